{{/*
Asymmetric token signing (secrets.jwtSigning). Airflow 3.3.2 signs with the PEM file named by
[api_auth] jwt_private_key_path and verifies against the JWKS file named by
[api_auth] trusted_jwks_url (a local path, read once per process: a changed JWKS takes a
restart). Signers: the scheduler (its tasks' workload tokens), the api-server (users' tokens)
and the execution-api (renewed task tokens); verifiers: both API servers. The private key is
mounted into the signers' Airflow container only, the JWKS into the verifiers' (never an init
container, never a worker). Which component gets which: componentSecrets (_config.tpl).
*/}}

{{- define "airflow-platform.jwtPrivateKeyDir" -}}/opt/airflow/jwt/signing{{- end -}}
{{- define "airflow-platform.jwtPublicKeysDir" -}}/opt/airflow/jwt/trusted{{- end -}}

{{/* Env entries. Input: (dict "root" $ "has" <componentSecrets list>). */}}
{{- define "airflow-platform.jwtSigningEnv" -}}
{{- $s := .root.Values.secrets.jwtSigning -}}
{{- $signs := has "jwtPrivateKey" .has -}}
{{- $verifies := has "jwtPublicKeys" .has -}}
{{- if $signs }}
- name: AIRFLOW__API_AUTH__JWT_PRIVATE_KEY_PATH
  value: {{ include "airflow-platform.jwtPrivateKeyDir" . }}/private-key.pem
{{- with $s.kid }}
- name: AIRFLOW__API_AUTH__JWT_KID
  value: {{ . | quote }}
{{- end }}
{{- end }}
{{- if $verifies }}
- name: AIRFLOW__API_AUTH__TRUSTED_JWKS_URL
  value: {{ include "airflow-platform.jwtPublicKeysDir" . }}/jwks.json
{{- end }}
{{- if and $s.algorithm (or $signs $verifies) }}
- name: AIRFLOW__API_AUTH__JWT_ALGORITHM
  value: {{ $s.algorithm | quote }}
{{- end }}
{{- end -}}

{{/* volumeMounts of a component's Airflow container. Input: the pod input (root, component). */}}
{{- define "airflow-platform.jwtSigningMounts" -}}
{{- if .root.Values.secrets.jwtSigning.enabled -}}
{{- $has := fromJsonArray (include "airflow-platform.componentSecrets" .) -}}
{{- if has "jwtPrivateKey" $has }}
- {name: jwt-private-key, mountPath: {{ include "airflow-platform.jwtPrivateKeyDir" . }}, readOnly: true}
{{- end }}
{{- if has "jwtPublicKeys" $has }}
- {name: jwt-public-keys, mountPath: {{ include "airflow-platform.jwtPublicKeysDir" . }}, readOnly: true}
{{- end }}
{{- end -}}
{{- end -}}

{{/* The volumes behind those mounts. Input: the pod input (root, component). */}}
{{- define "airflow-platform.jwtSigningVolumes" -}}
{{- $s := .root.Values.secrets.jwtSigning -}}
{{- if $s.enabled -}}
{{- $has := fromJsonArray (include "airflow-platform.componentSecrets" .) -}}
{{- if has "jwtPrivateKey" $has }}
- name: jwt-private-key
  secret:
    secretName: {{ $s.privateKey.secretName | quote }}
    defaultMode: 0440
    items:
      - {key: {{ $s.privateKey.key | quote }}, path: private-key.pem}
{{- end }}
{{- if has "jwtPublicKeys" $has }}
- name: jwt-public-keys
  {{- if eq $s.publicKeys.kind "Secret" }}
  secret:
    secretName: {{ $s.publicKeys.name | quote }}
  {{- else }}
  configMap:
    name: {{ $s.publicKeys.name | quote }}
  {{- end }}
    defaultMode: 0444
    items:
      - {key: {{ $s.publicKeys.key | quote }}, path: jwks.json}
{{- end }}
{{- end -}}
{{- end -}}
