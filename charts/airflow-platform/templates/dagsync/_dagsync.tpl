{{/*
The dagsync wiring (`airflow-platform dagsync`): S3 -> the shared sync volume, as an init container
(--once) and a plain sidecar container in every Airflow pod but migrations. A plain container,
not a native restartPolicy sidecar, so the pod also runs on control planes older than 1.29.
*/}}

{{/* The environment of dagsync: each of its command-line flags has an env var. */}}
{{- define "airflow-platform.dagsyncEnv" -}}
{{- $s3 := .Values.dags.s3 -}}
{{- $sync := .Values.dags.sync -}}
{{- if and $sync.eventTopicArn $sync.eventQueueUrl }}
{{- fail "\ndags.sync.eventTopicArn and dags.sync.eventQueueUrl are alternatives: keep eventTopicArn (every pod hears every S3 event) and set eventQueueUrl to \"\"." }}
{{- end }}
{{- $vars := dict
  "DAGSYNC_BUCKET" $s3.bucket
  "DAGSYNC_DAGS_PREFIX" $s3.dagsPrefix
  "AIRFLOW_PLATFORM_SYNC_ROOT" "/opt/airflow/sync"
  "AIRFLOW_PLATFORM_LOG_FORMAT" .Values.logging.format
  "AIRFLOW_PLATFORM_ENVIRONMENT" .Values.environmentName
  "DAGSYNC_INTERVAL" ($sync.intervalSeconds | int | toString)
  "DAGSYNC_EVENT_QUEUE_URL" $sync.eventQueueUrl
  "DAGSYNC_EVENT_TOPIC_ARN" $sync.eventTopicArn
  "DAGSYNC_EVENT_QUEUE_PREFIX" (ternary (include "airflow-platform.dagsyncQueuePrefix" .) "" (not (empty $sync.eventTopicArn)))
  "DAGSYNC_PLUGINS_KEY" $s3.pluginsKey
  "DAGSYNC_PLUGINS_VERSION" $s3.pluginsVersion
  "DAGSYNC_REQUIREMENTS_KEY" $s3.requirementsKey
  "DAGSYNC_REQUIREMENTS_VERSION" $s3.requirementsVersion
  "DAGSYNC_STARTUP_KEY" $s3.startupScriptKey
  "DAGSYNC_STARTUP_VERSION" $s3.startupScriptVersion
  "DAGSYNC_STRICT" (ternary "true" "false" $sync.strict)
  "DAGSYNC_HEALTH_PORT" ($sync.healthPort | int | toString)
  "DAGSYNC_PARALLELISM" ($sync.parallelism | int | toString)
  "DAGSYNC_HEALTH_HOST" $sync.healthHost
  "DAGSYNC_MAX_OBJECT_BYTES" ($sync.maxObjectBytes | int64 | toString)
  "DAGSYNC_MAX_TOTAL_BYTES" ($sync.maxTotalBytes | int64 | toString)
  "DAGSYNC_MAX_FILES" ($sync.maxFiles | int64 | toString)
  "DAGSYNC_MAX_SCRIPT_BYTES" ($sync.maxScriptBytes | int64 | toString)
  "AWS_REGION" .Values.aws.region
  "AWS_DEFAULT_REGION" .Values.aws.region
  "PYTHONUNBUFFERED" "1"
-}}
{{- range $name, $value := $vars }}
{{- if $value }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- end }}
{{- if not $sync.healthHost }}
{{- /* The pod IP: reachable by the kubelet's probes and Prometheus, not every interface. */}}
- name: DAGSYNC_HEALTH_HOST
  valueFrom: {fieldRef: {fieldPath: status.podIP}}
{{- end }}
{{- if $sync.eventTopicArn }}
{{- /* Owner tag of the pod's own event queue; the UID lets a restarted container remove
       the queue its predecessor left behind. */}}
- name: DAGSYNC_POD_NAME
  valueFrom: {fieldRef: {fieldPath: metadata.name}}
- name: DAGSYNC_POD_UID
  valueFrom: {fieldRef: {fieldPath: metadata.uid}}
{{- end }}
{{- end -}}

{{/* Name prefix of the per-pod event queues: the value, or dagsync-<environmentName>-. */}}
{{- define "airflow-platform.dagsyncQueuePrefix" -}}
{{- .Values.dags.sync.eventQueuePrefix | default (printf "dagsync-%s" .Values.environmentName | trunc 59 | printf "%s-") -}}
{{- end -}}

{{/* The dagsync container: the init copy (--once) or the sidecar loop. Input: (dict "root" $ "once" bool "component" name). */}}
{{- define "airflow-platform.dagsyncContainer" -}}
{{- $v := .root.Values -}}
- name: {{ ternary "dagsync-init" "dagsync" .once }}
  image: {{ include "airflow-platform.image" .root | quote }}
  imagePullPolicy: {{ $v.image.pullPolicy }}
  command: ["airflow-platform", "dagsync"{{ if .once }}, "--once"{{ end }}]
  env:
    {{- include "airflow-platform.dagsyncEnv" .root | trim | nindent 4 }}
    {{- if and (not .once) (eq .component "dag-processor") $v.dags.sync.parseRequests }}
    {{- /* The DAG processor's own database URL (through PgBouncer when it runs), for this
           sidecar only: it writes parse requests for what each sync changed. */}}
    {{- $db := fromJsonArray (include "airflow-platform.databaseSecret" (dict "root" .root "component" .component)) }}
    {{- include "airflow-platform.secretEnv" (list "DAGSYNC_DATABASE_URL" (index $db 0) (index $db 1)) | nindent 4 }}
    - name: DAGSYNC_DAG_BUNDLE
      value: dags-folder
    {{- end }}
  {{- if not .once }}
  ports:
    - {name: dagsync, containerPort: {{ $v.dags.sync.healthPort }}}
  livenessProbe:
    httpGet: {path: /healthz, port: dagsync}
    periodSeconds: 30
    timeoutSeconds: 5
    failureThreshold: 4
  readinessProbe:
    httpGet: {path: /readyz, port: dagsync}
    periodSeconds: 10
    timeoutSeconds: 5
  {{- end }}
  resources:
    {{- include "airflow-platform.withEphemeralStorage" (dict "resources" $v.dags.sync.resources "storage" $v.ephemeralStorage.containers.dagsync) | nindent 4 }}
  securityContext:
    {{- include "airflow-platform.containerSecurityContext" .root | nindent 4 }}
  volumeMounts:
    - {name: sync, mountPath: /opt/airflow/sync}
    - {name: tmp, mountPath: /tmp}
{{- end -}}
