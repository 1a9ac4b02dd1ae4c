{{/*
Sign-in (auth.*): the Airflow configuration of the chosen auth manager, the FAB
webserver_config.py, and what only the API server pod gets (the client secret, the
configuration file, the SimpleAuthManager passwords).
*/}}

{{- define "airflow-platform.authManagerClass" -}}
{{- get (dict
  "fab" "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
  "aws" "airflow.providers.amazon.aws.auth_manager.aws_auth_manager.AwsAuthManager"
  "simple" "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
) .Values.auth.manager -}}
{{- end -}}

{{- define "airflow-platform.authConfigDir" -}}/opt/airflow/auth{{- end -}}
{{- define "airflow-platform.simplePasswordsFile" -}}/opt/airflow/simple-auth/passwords.json{{- end -}}

{{/* Airflow configuration of the auth manager, as YAML {"section.key": "value"}. */}}
{{- define "airflow-platform.authConfig" -}}
{{- $v := .Values -}}
{{- $a := $v.auth -}}
{{- $cfg := dict "core.auth_manager" (include "airflow-platform.authManagerClass" .) -}}
{{- if eq $a.manager "fab" }}
{{- $_ := set $cfg "fab.config_file" (printf "%s/webserver_config.py" (include "airflow-platform.authConfigDir" .)) }}
{{- /* The ALB terminates TLS: the callback URL FAB sends the provider must be https. */}}
{{- $_ := set $cfg "fab.enable_proxy_fix" "True" }}
{{- if $v.ingress.certificateArn }}
{{- $_ := set $cfg "fab.cookie_secure" "True" }}
{{- end }}
{{- else if eq $a.manager "aws" }}
{{- $_ := set $cfg "aws_auth_manager.region_name" ($a.aws.regionName | default $v.aws.region) }}
{{- $_ := set $cfg "aws_auth_manager.avp_policy_store_id" $a.aws.avpPolicyStoreId }}
{{- $_ := set $cfg "aws_auth_manager.saml_metadata_url" $a.aws.samlMetadataUrl }}
{{- $_ := set $cfg "aws_auth_manager.conn_id" $a.aws.connId }}
{{- else if eq $a.manager "simple" }}
{{- $_ := set $cfg "core.simple_auth_manager_users" $a.simple.users }}
{{- $_ := set $cfg "core.simple_auth_manager_passwords_file" (include "airflow-platform.simplePasswordsFile" .) }}
{{- end }}
{{- toYaml $cfg -}}
{{- end -}}

{{/* FAB's webserver_config.py: configuration only, no secret (that comes from the env). */}}
{{- define "airflow-platform.webserverConfig" -}}
{{- $o := .Values.auth.oidc -}}
# Rendered by the airflow-platform chart from auth.oidc: OpenID Connect sign-in through FAB.
# No secret here: the client secret is read from the API server's environment.
import os

from flask_appbuilder.const import AUTH_OAUTH

from airflow_platform.auth.fab_oidc import OidcSecurityManager

AUTH_TYPE = AUTH_OAUTH
SECURITY_MANAGER_CLASS = OidcSecurityManager
WTF_CSRF_ENABLED = True
OAUTH_PROVIDERS = [
    {
        "name": "oidc",
        "icon": "fa-openid",
        "token_key": "access_token",
        "remote_app": {
            "client_id": {{ toJson $o.clientId }},
            "client_secret": os.environ["AIRFLOW_PLATFORM_OIDC_CLIENT_SECRET"],
            "server_metadata_url": {{ printf "%s/.well-known/openid-configuration" (trimSuffix "/" $o.issuerUrl) | toJson }},
            "client_kwargs": {
                "scope": {{ join " " $o.scopes | toJson }},
                "code_challenge_method": "S256",
            },
        },
    }
]
OIDC_USERNAME_CLAIM = {{ toJson $o.usernameClaim }}
OIDC_GROUPS_CLAIM = {{ toJson $o.groupsClaim }}
OIDC_DEFAULT_ROLE = {{ toJson $o.defaultRole }}
AUTH_USER_REGISTRATION = True
AUTH_USER_REGISTRATION_ROLE = {{ toJson $o.defaultRole }}
AUTH_ROLES_MAPPING = {{ toJson ($o.roleMapping | default dict) }}
AUTH_ROLES_SYNC_AT_LOGIN = True
{{- end -}}

{{/* What the API server pod adds to the common pod, as (dict "extraEnv" ... ). */}}
{{- define "airflow-platform.apiServerAuthSpec" -}}
{{- $v := .Values -}}
{{- $a := $v.auth -}}
{{- if eq $a.manager "fab" }}
extraEnv:
  - name: AIRFLOW_PLATFORM_OIDC_CLIENT_SECRET
    valueFrom:
      secretKeyRef:
        name: {{ $a.oidc.clientSecret.existingSecret | quote }}
        key: {{ $a.oidc.clientSecret.key | quote }}
extraMounts:
  - {name: auth-config, mountPath: {{ include "airflow-platform.authConfigDir" . }}, readOnly: true}
extraVolumes:
  - name: auth-config
    configMap:
      name: {{ include "airflow-platform.componentName" (dict "root" . "component" "auth") }}
annotations:
  airflow-platform.io/auth-checksum: {{ include "airflow-platform.webserverConfig" . | sha256sum }}
{{- else if eq $a.manager "simple" }}
{{- $dir := dir (include "airflow-platform.simplePasswordsFile" .) }}
extraMounts:
  - {name: simple-auth, mountPath: {{ $dir }}}
extraVolumes:
  - {name: simple-auth, emptyDir: {medium: Memory, sizeLimit: 1Mi}}
  - name: simple-auth-secret
    secret:
      secretName: {{ $a.simple.passwordsSecret.name | quote }}
      items: [{key: {{ $a.simple.passwordsSecret.key | quote }}, path: passwords.json}]
extraInitContainers:
  {{- /* Airflow writes to its passwords file (and generates, then logs, any missing
  user's password): it gets a writable copy, refused when a user has no password. */}}
  - name: simple-auth-passwords
    image: {{ include "airflow-platform.image" . }}
    imagePullPolicy: {{ $v.image.pullPolicy }}
    command: [airflow-platform, auth, simple-passwords, --source, /opt/airflow/simple-auth-secret/passwords.json, --target, {{ include "airflow-platform.simplePasswordsFile" . }}]
    env:
      - name: AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS
        value: {{ $a.simple.users | quote }}
    resources:
      {{- toYaml $v.migrations.resources | nindent 6 }}
    securityContext:
      {{- include "airflow-platform.containerSecurityContext" . | nindent 6 }}
    volumeMounts:
      - {name: simple-auth, mountPath: {{ $dir }}}
      - {name: simple-auth-secret, mountPath: /opt/airflow/simple-auth-secret, readOnly: true}
{{- else }}
{}
{{- end }}
{{- end -}}
