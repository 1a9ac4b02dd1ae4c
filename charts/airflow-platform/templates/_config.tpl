{{/*
The Airflow configuration, written once and rendered as the environment of every
component. Input of each template: (dict "root" $ "component" "<component>").
*/}}

{{/* The MWAA log type a component's logs belong to (logging.<type>). */}}
{{- define "airflow-platform.logType" -}}
{{- get (dict "scheduler" "scheduler" "triggerer" "scheduler" "migrations" "scheduler" "retention" "scheduler" "dag-processor" "dagProcessing" "api-server" "webServer" "execution-api" "webServer" "worker" "worker") .component -}}
{{- end -}}

{{/* MWAA's log group name of a log type: airflow-<env>-<Type>. */}}
{{- define "airflow-platform.logGroup" -}}
{{- $suffix := get (dict "scheduler" "Scheduler" "dagProcessing" "DAGProcessing" "webServer" "WebServer" "worker" "Worker" "task" "Task") .type -}}
{{- printf "airflow-%s-%s" .root.Values.environmentName $suffix -}}
{{- end -}}

{{/*
The configuration users may change: MWAA's defaults and what the chart derives from its
values, with airflowConfigurationOptions merged over it. Output: YAML {"section.key": "value"}.
*/}}
{{- define "airflow-platform.airflowConfig" -}}
{{- $v := .root.Values -}}
{{- /* Celery: acks late, prefetch 1 and no soft shutdown timeout make a worker's SIGTERM a
drain (warm shutdown) that loses no message (airflow-platform scaling celery-env); the
worker imports airflow_platform.scaling.worker_shutdown, which lets its open SQS long poll
return and hands back what it received before the process exits.
Latency: kombu polls SQS every 0.2 s instead of 1 s, and the task supervisor checks its
task every second instead of five (bench/local/run.py compares a 200-task fan-out with
Airflow's stock values; bench/results/local.txt).
Re-parsing: with dags.sync.parseRequests every synced change is parsed within about a second,
so unchanged files are re-parsed every 300 s instead of MWAA's 30 s (1,000 files re-parsed
every 30 s keep the DAG processor busy; bench/results/dagsync-visibility.txt). */ -}}
{{- $level := (get $v.logging (include "airflow-platform.logType" .)).level -}}
{{- $cfg := dict
  "core.load_examples" "False"
  "core.dagbag_import_timeout" "30"
  "dag_processor.refresh_interval" "300"
  "dag_processor.min_file_process_interval" (ternary "300" "30" (($v.dags.sync).parseRequests | default false))
  "dag_processor.dag_file_processor_timeout" "50"
  "scheduler.task_queued_timeout" "1800"
  "scheduler.enable_health_check" "True"
  "scheduler.scheduler_health_check_server_port" "8974"
  "celery.worker_concurrency" (ternary (toString (.workerQueue | default dict).tasks) (include "airflow-platform.tasksPerWorker" .root) (hasKey (.workerQueue | default dict) "tasks"))
  "celery.task_acks_late" "True"
  "celery.worker_prefetch_multiplier" "1"
  "celery.extra_celery_config" `{"worker_soft_shutdown_timeout": 0, "imports": ["airflow_platform.scaling.worker_shutdown"]}`
  "celery.operation_timeout" (toString $v.celery.operationTimeout)
  "celery_broker_transport_options.region" $v.aws.region
  "celery_broker_transport_options.visibility_timeout" (toString ($v.celery.visibilityTimeout | int))
  "celery_broker_transport_options.is_secure" (ternary "True" "False" $v.celery.isSecure)
  "celery_broker_transport_options.polling_interval" "0.2"
  "workers.min_heartbeat_interval" "1"
  "api.workers" (toString ($v.apiServer.workers | int))
  "logging.logging_level" (ternary $v.logging.task.level $level (eq .component "worker"))
  "logging.celery_logging_level" $level
  "metrics.statsd_prefix" $v.metrics.statsd.prefix
-}}
{{- $cfg = merge $cfg (fromYaml (include "airflow-platform.authConfig" .root)) -}}
{{- if $v.ingress.host -}}
{{- $_ := set $cfg "api.base_url" (printf "%s://%s" (ternary "https" "http" (or (ne $v.ingress.certificateArn "") (ne $v.ingress.tls.secretName ""))) $v.ingress.host) -}}
{{- end -}}
{{- with fromYaml (include "airflow-platform.secretsBackend" .root) -}}
{{- $_ := set $cfg "secrets.backend" .backend -}}
{{- $_ := set $cfg "secrets.backend_kwargs" .backend_kwargs -}}
{{- end -}}
{{- $all := merge (deepCopy $v.airflowConfigurationOptions) $cfg -}}
{{- /* An option read from a Secret is never written as a value (nor into the ConfigMap). */ -}}
{{- range $key, $_ := $v.airflowConfigurationSecrets }}{{ $_ := unset $all $key }}{{ end -}}
{{- toYaml $all -}}
{{- end -}}

{{/* AIRFLOW__SECTION__KEY of a "section.key". */}}
{{- define "airflow-platform.configEnvName" -}}
{{- printf "AIRFLOW__%s" (. | replace "." "__" | upper) -}}
{{- end -}}

{{/* An env entry read from an existing Secret. Input: (list NAME secretName key). */}}
{{- define "airflow-platform.secretEnv" -}}
- name: {{ index . 0 }}
  valueFrom:
    secretKeyRef:
      name: {{ index . 1 | quote }}
      key: {{ index . 2 | quote }}
{{- end -}}

{{/* The connection Airflow uses: through PgBouncer when it runs (never for migrations). */}}
{{- define "airflow-platform.databaseSecret" -}}
{{- $v := .root.Values -}}
{{- if and $v.pgbouncer.enabled (not (has .component (list "migrations" "retention"))) -}}
{{- toJson (list $v.pgbouncer.connectionSecret.secretName $v.pgbouncer.connectionSecret.key) -}}
{{- else -}}
{{- toJson (list $v.database.existingSecret $v.database.secretKey) -}}
{{- end -}}
{{- end -}}

{{/*
Which secrets a component's containers receive: each only what its own code reads (the matrix
in the chart README). Task code runs in worker containers, which get none of the keys that sign
or decrypt anything (JWT secret, API secret key, Fernet key) and no metadata database URL: they
reach Airflow through the execution API with the short-lived token the scheduler signed.
log-server is the worker pod's log-server container (the API secret key validates log requests).
With secrets.jwtSigning, jwtSecret gives way to jwtPrivateKey (a file in those that sign: the
scheduler its tasks' tokens, both API servers theirs) and jwtPublicKeys (a file in those that
verify: both API servers), see _jwt.tpl.
Input: (dict "root" $ "component" "x" ["secretsOf" "y"]): secretsOf gives a container the set of
another component (wait-for-migrations: that of migrations).
*/}}
{{- define "airflow-platform.componentSecrets" -}}
{{- toJson (get (dict
  "scheduler" (list "database" "fernetKey" "jwtSecret" "jwtPrivateKey" "resultBackend")
  "dag-processor" (list "database" "fernetKey")
  "triggerer" (list "database" "fernetKey" "apiSecretKey")
  "api-server" (list "database" "fernetKey" "jwtSecret" "jwtPrivateKey" "jwtPublicKeys" "apiSecretKey")
  "execution-api" (list "database" "fernetKey" "jwtSecret" "jwtPrivateKey" "jwtPublicKeys")
  "worker" (list "resultBackend")
  "log-server" (list "apiSecretKey")
  "migrations" (list "database")
  "retention" (list "database")
) (.secretsOf | default .component)) -}}
{{- end -}}

{{/* The Celery result backend's Secret: its own (a least-privilege role), or the database's
when explicitly allowed (workers then hold the metadata database URL). */}}
{{- define "airflow-platform.resultBackendSecret" -}}
{{- $rb := .root.Values.database.resultBackendSecret -}}
{{- if $rb.existingSecret -}}
{{- toJson (list $rb.existingSecret $rb.secretKey) -}}
{{- else if $rb.useDatabaseSecret -}}
{{- include "airflow-platform.databaseSecret" . -}}
{{- else -}}
{{- fail "\ndatabase.resultBackendSecret.existingSecret is required: set it to a Secret holding the URL of a role limited to Celery's result tables (chart README, Least privilege), or set database.resultBackendSecret.useDatabaseSecret=true to give workers the metadata database URL (task code can then read and change every Airflow table)." -}}
{{- end -}}
{{- end -}}

{{/* The secret env entries of a component (see componentSecrets). */}}
{{- define "airflow-platform.secretsEnv" -}}
{{- $v := .root.Values -}}
{{- $has := fromJsonArray (include "airflow-platform.componentSecrets" .) -}}
{{- if has "database" $has }}
{{- $db := fromJsonArray (include "airflow-platform.databaseSecret" .) }}
{{ include "airflow-platform.secretEnv" (list "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" (index $db 0) (index $db 1)) }}
{{- end }}
{{- if has "resultBackend" $has }}
{{- $rb := fromJsonArray (include "airflow-platform.resultBackendSecret" .) }}
{{ include "airflow-platform.secretEnv" (list "AIRFLOW_PLATFORM_RESULT_BACKEND_URL" (index $rb 0) (index $rb 1)) }}
- name: AIRFLOW__CELERY__RESULT_BACKEND
  value: db+$(AIRFLOW_PLATFORM_RESULT_BACKEND_URL)
{{- end }}
{{- if has "fernetKey" $has }}
{{ include "airflow-platform.secretEnv" (list "AIRFLOW__CORE__FERNET_KEY" $v.secrets.fernetKey.secretName $v.secrets.fernetKey.key) }}
{{- end }}
{{- if has "apiSecretKey" $has }}
{{ include "airflow-platform.secretEnv" (list "AIRFLOW__API__SECRET_KEY" $v.secrets.apiSecretKey.secretName $v.secrets.apiSecretKey.key) }}
{{- end }}
{{- if $v.secrets.jwtSigning.enabled }}
{{- include "airflow-platform.jwtSigningEnv" (dict "root" .root "has" $has) }}
{{- else if has "jwtSecret" $has }}
{{ include "airflow-platform.secretEnv" (list "AIRFLOW__API_AUTH__JWT_SECRET" $v.secrets.jwtSecret.secretName $v.secrets.jwtSecret.key) }}
{{- end }}
{{- end -}}

{{/*
The environment of every Airflow container. Platform-owned settings first (users cannot
override them: the schema refuses those keys), then the mergeable configuration.
*/}}
{{- define "airflow-platform.env" -}}
{{- $v := .root.Values -}}
- name: AIRFLOW_HOME
  value: /opt/airflow
- name: AIRFLOW_CONFIG
  # Configuration comes from this environment only; no airflow.cfg is read or written.
  value: /dev/null
- name: AIRFLOW_ENV_NAME
  value: {{ $v.environmentName | quote }}
- name: AIRFLOW_PLATFORM_SYNC_ROOT
  value: /opt/airflow/sync
- name: AIRFLOW_PLATFORM_REQUIREMENTS_ON_FAILURE
  value: {{ $v.requirements.onFailure | quote }}
- name: AIRFLOW_PLATFORM_PACKAGES_DIR
  value: /opt/airflow/packages
- name: AIRFLOW_PLATFORM_WHEEL_CACHE
  value: /opt/airflow/wheel-cache
- name: AWS_REGION
  value: {{ $v.aws.region | quote }}
- name: AWS_DEFAULT_REGION
  value: {{ $v.aws.region | quote }}
- name: PYTHONUNBUFFERED
  value: "1"
- name: AIRFLOW__CORE__EXECUTOR
  value: CeleryExecutor
- name: AIRFLOW__CORE__DAGS_FOLDER
  value: /opt/airflow/sync/dags/current
- name: AIRFLOW__CORE__PLUGINS_FOLDER
  value: /opt/airflow/sync/plugins/current
- name: AIRFLOW__CORE__EXECUTION_API_SERVER_URL
  value: {{ include "airflow-platform.executionApiUrl" .root | quote }}
{{- include "airflow-platform.secretsEnv" . }}
- name: AIRFLOW__CELERY__BROKER_URL
  # Credentials come from IRSA; the queue URL from predefined_queues.
  value: sqs://
- name: AIRFLOW__CELERY__WORKER_ENABLE_REMOTE_CONTROL
  value: "False"
- name: AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__PREDEFINED_QUEUES
  value: {{ include "airflow-platform.predefinedQueues" .root | quote }}
{{- $task := $v.logging.task }}
{{- if and $task.enabled (eq $task.destination "s3") }}
{{- /* Credentials from the pod's role (IRSA): no Airflow connection. With a KMS key the bucket's
default SSE-KMS encryption applies; encrypt_s3_logs would force SSE-S3 over it. */}}
- name: AIRFLOW__LOGGING__REMOTE_LOGGING
  value: "True"
- name: AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER
  value: {{ printf "s3://%s/%s" $task.s3.bucket $task.s3.prefix | trimSuffix "/" | quote }}
- name: AIRFLOW__LOGGING__REMOTE_LOG_CONN_ID
  value: ""
- name: AIRFLOW__LOGGING__ENCRYPT_S3_LOGS
  value: {{ ternary "False" "True" (ne $task.s3.kmsKeyId "") | quote }}
{{- else if and $v.logging.cloudwatch.enabled $task.enabled }}
- name: AIRFLOW__LOGGING__REMOTE_LOGGING
  value: "True"
- name: AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER
  value: {{ printf "cloudwatch://arn:aws:logs:%s:%s:log-group:%s" $v.aws.region (include "airflow-platform.accountId" .root) (include "airflow-platform.logGroup" (dict "root" .root "type" "task")) | quote }}
{{- else }}
- name: AIRFLOW__LOGGING__REMOTE_LOGGING
  value: "False"
{{- end }}
- name: AIRFLOW_PLATFORM_LOG_FORMAT
  value: {{ $v.logging.format | quote }}
- name: AIRFLOW_PLATFORM_ENVIRONMENT
  value: {{ $v.environmentName | quote }}
- name: AIRFLOW__METRICS__STATSD_ON
  value: {{ ternary "True" "False" $v.metrics.statsd.enabled | quote }}
{{- if $v.metrics.statsd.enabled }}
- name: AIRFLOW__METRICS__STATSD_HOST
{{- if $v.metrics.statsdExporter.enabled }}
  value: {{ printf "%s.%s.svc" (include "airflow-platform.componentName" (dict "root" .root "component" "statsd-exporter")) .root.Release.Namespace | quote }}
{{- else if $v.metrics.statsd.host }}
  value: {{ $v.metrics.statsd.host | quote }}
{{- else }}
  valueFrom:
    fieldRef:
      fieldPath: status.hostIP
{{- end }}
- name: AIRFLOW__METRICS__STATSD_PORT
  value: {{ $v.metrics.statsd.port | int | quote }}
{{- end }}
{{- if $v.canary.enabled }}
{{- /* The canary ships in the image: a second DAG bundle beside the synced DAGs folder. */}}
{{- $local := "airflow.dag_processing.bundles.local.LocalDagBundle" }}
- name: AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST
  value: {{ toJson (list (dict "name" "dags-folder" "classpath" $local "kwargs" dict) (dict "name" "platform" "classpath" $local "kwargs" (dict "path" $v.canary.dagsPath))) | quote }}
- name: AIRFLOW_PLATFORM_CANARY_SCHEDULE
  value: {{ $v.canary.schedule | quote }}
- name: AIRFLOW_PLATFORM_CANARY_QUEUES
  value: {{ join "," $v.canary.queues | quote }}
{{- end }}
{{- range $key, $value := fromYaml (include "airflow-platform.airflowConfig" .) }}
- name: {{ include "airflow-platform.configEnvName" $key }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- range $key, $ref := $v.airflowConfigurationSecrets }}
{{ include "airflow-platform.secretEnv" (list (include "airflow-platform.configEnvName" $key) $ref.secretName $ref.key) }}
{{- end }}
{{- end -}}
