{{/*
The worker pod's log server: serves the task log files of this pod to the API server while the
tasks run. A container of its own, because it validates requests with the API secret key, which
the worker container (where task code runs) must not hold: a separate container's environment
is out of task code's reach (the pod does not share its process namespace).
*/}}
{{- define "airflow-platform.workerLogServerContainer" -}}
{{- $v := .Values -}}
name: log-server
image: {{ include "airflow-platform.image" . }}
imagePullPolicy: {{ $v.image.pullPolicy }}
command: ["python", "-m", "airflow.utils.serve_logs.core"]
ports: [{name: logs, containerPort: 8793}]
env:
  - name: AIRFLOW_HOME
    value: /opt/airflow
  - name: AIRFLOW_CONFIG
    value: /dev/null
  - name: HOME
    value: /tmp
  - name: PYTHONUNBUFFERED
    value: "1"
  - name: AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT
    value: "8793"
  {{- include "airflow-platform.secretsEnv" (dict "root" . "component" "log-server") | nindent 2 }}
readinessProbe: {tcpSocket: {port: logs}, periodSeconds: 15, timeoutSeconds: 5}
livenessProbe: {tcpSocket: {port: logs}, periodSeconds: 30, timeoutSeconds: 5, failureThreshold: 5}
resources:
  {{- include "airflow-platform.withEphemeralStorage" (dict "resources" $v.workers.logServer.resources "storage" $v.ephemeralStorage.containers.small) | nindent 2 }}
securityContext:
  {{- include "airflow-platform.containerSecurityContext" . | nindent 2 }}
volumeMounts:
  - {name: logs, mountPath: /opt/airflow/logs, readOnly: true}
  - {name: tmp, mountPath: /tmp}
{{- end -}}
