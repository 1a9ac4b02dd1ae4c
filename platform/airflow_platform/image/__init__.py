"""The platform image built without a registry: the base (platform/base-image) and
platform/Dockerfile on top, with podman and buildah, cached by the hash of their inputs."""
