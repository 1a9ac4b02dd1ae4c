{{/* Secrets backend class and kwargs, as a {"backend": ..., "backend_kwargs": ...} YAML map. */}}
{{- define "airflow-platform.secretsBackend" -}}
{{- $sb := .Values.secretsBackend -}}
{{- if eq $sb.type "vault" -}}
{{- $v := $sb.vault -}}
{{- $kw := dict "url" $v.url "auth_type" $v.authType "mount_point" $v.mountPoint "kv_engine_version" ($v.kvEngineVersion | int) "connections_path" $v.connectionsPath "variables_path" $v.variablesPath "config_path" (default nil $v.configPath) -}}
{{- if eq $v.authType "kubernetes" -}}
{{- $_ := set $kw "kubernetes_role" $v.role -}}
{{- $_ := set $kw "kubernetes_jwt_path" "/var/run/secrets/vault/token" -}}
{{- else -}}
{{- $_ := set $kw "role_id" $v.role -}}
{{- $_ := set $kw "region" .Values.aws.region -}}
{{- end -}}
{{- with $v.authMountPoint }}{{ $_ := set $kw "auth_mount_point" . }}{{ end -}}
backend: airflow.providers.hashicorp.secrets.vault.VaultBackend
backend_kwargs: {{ toJson $kw | quote }}
{{- else if eq $sb.type "aws" -}}
{{- $a := $sb.aws -}}
{{- /* MWAA never looks aws_default up in the backend: it is the pod's own IRSA identity. */ -}}
{{- $kw := dict "connections_prefix" $a.connectionsPrefix "variables_prefix" $a.variablesPrefix "config_prefix" (default nil $a.configPrefix) "connections_lookup_pattern" "^(?!aws_default$).*$" "region_name" .Values.aws.region -}}
backend: airflow.providers.amazon.aws.secrets.secrets_manager.SecretsManagerBackend
backend_kwargs: {{ toJson $kw | quote }}
{{- end -}}
{{- end -}}
