"""`airflow-platform image build`: the platform image without a registry (podman + buildah)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    image = typer.Typer(help="Build the platform image locally (podman + buildah).")
    app.add_typer(image, name="image")

    @image.command("build")
    def build(
        tag: str = typer.Option(
            "", help="Also tag the result so (default localhost/airflow-platform:<version>)."
        ),
    ) -> None:
        """Build the base image (Debian + Airflow at the locked pins) and platform/Dockerfile
        on it; both are reused while their inputs are unchanged."""
        from airflow_platform.image.build import default_user_tag, ensure_platform
        from airflow_platform.image.podman import PodmanError, image_size

        try:
            base, built = ensure_platform(
                progress=typer.echo, extra_tags=(tag or default_user_tag(),)
            )
        except PodmanError as exc:
            typer.secho(str(exc), fg="red", err=True)
            raise typer.Exit(1) from exc
        for what, item in (("base", base), ("platform", built)):
            state = "cached" if item.cached else f"built in {item.seconds:.0f} s"
            size = image_size(item.tag) / 1e6
            typer.echo(f"{what:9} {item.tag} ({state}, {size:.0f} MB)")
        typer.echo(f"tagged    {tag or default_user_tag()}")
