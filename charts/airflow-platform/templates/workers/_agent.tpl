{{/*
The worker agent: keeps its pod's controller.kubernetes.io/pod-deletion-cost equal to the
tasks the worker runs, so a ReplicaSet scale-in removes idle workers first. It is the only
container of any pod with a Kubernetes API token (a projected, short-lived token mounted in
this container alone); the Role and the admission policy in rbac/ let that token patch
nothing but this annotation of this pod. It reads the running tasks from the metadata
database by the worker's Airflow hostname (the pod's own hostname).
*/}}

{{- define "airflow-platform.workerAgentContainer" -}}
{{- $v := .Values -}}
{{- $agent := $v.workers.deletionCostAgent -}}
{{- $db := fromJsonArray (include "airflow-platform.databaseSecret" (dict "root" . "component" "worker")) -}}
name: worker-agent
image: {{ include "airflow-platform.image" . | quote }}
imagePullPolicy: {{ $v.image.pullPolicy }}
command: ["airflow-platform", "scaling", "worker-agent"]
env:
  - name: POD_NAME
    valueFrom: {fieldRef: {fieldPath: metadata.name}}
  - name: POD_NAMESPACE
    valueFrom: {fieldRef: {fieldPath: metadata.namespace}}
  - name: WORKER_AGENT_INTERVAL
    value: {{ $agent.intervalSeconds | toString | quote }}
  {{- /* /metrics on the pod IP only (what Prometheus scrapes), never every interface. */}}
  - name: WORKER_AGENT_METRICS_PORT
    value: {{ $agent.metricsPort | toString | quote }}
  - name: WORKER_AGENT_METRICS_HOST
    valueFrom: {fieldRef: {fieldPath: status.podIP}}
  {{- /* Airflow is imported only for its hostname_callable: its home (~/airflow) is in the
  agent's own scratch space. */}}
  - name: HOME
    value: /tmp
  - name: AIRFLOW_CONFIG
    value: /dev/null
  - name: PYTHONUNBUFFERED
    value: "1"
  - name: AIRFLOW_PLATFORM_LOG_FORMAT
    value: {{ $v.logging.format | quote }}
  - name: AIRFLOW_PLATFORM_ENVIRONMENT
    value: {{ $v.environmentName | quote }}
  {{- with index $v.airflowConfigurationOptions "core.hostname_callable" }}
  - name: AIRFLOW__CORE__HOSTNAME_CALLABLE
    value: {{ . | quote }}
  {{- end }}
  {{- include "airflow-platform.secretEnv" (list "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" (index $db 0) (index $db 1)) | nindent 2 }}
ports:
  - {name: agent-metrics, containerPort: {{ $agent.metricsPort }}, protocol: TCP}
{{- /* Live and ready while its process (PID 1) runs, neither a zombie nor stopped (/metrics
answers even when the database does not). A failing agent never holds the worker back: the
cost only orders scale-in. */}}
{{- range $probe := list "livenessProbe" "readinessProbe" }}
{{ $probe }}:
  exec:
    command: ["sh", "-c", "case \"$(sed -n 's/^State:[[:space:]]*\\(.\\).*/\\1/p' /proc/1/status)\" in Z|T|'') exit 1 ;; esac"]
  periodSeconds: 30
  timeoutSeconds: 5
  failureThreshold: 3
{{- end }}
resources:
  {{- include "airflow-platform.withEphemeralStorage" (dict "resources" $agent.resources "storage" $v.ephemeralStorage.containers.small) | nindent 2 }}
securityContext:
  {{- include "airflow-platform.containerSecurityContext" . | nindent 2 }}
volumeMounts:
  - {name: worker-agent-token, mountPath: /var/run/secrets/kubernetes.io/serviceaccount, readOnly: true}
  - {name: worker-agent-tmp, mountPath: /tmp}
{{- end -}}

{{/* What the kubelet would mount for automountServiceAccountToken, but for one container. */}}
{{- define "airflow-platform.workerAgentVolumes" -}}
- name: worker-agent-token
  projected:
    sources:
      - serviceAccountToken: {path: token, expirationSeconds: 3600}
      - configMap:
          name: kube-root-ca.crt
          items: [{key: ca.crt, path: ca.crt}]
      - downwardAPI:
          items: [{path: namespace, fieldRef: {fieldPath: metadata.namespace}}]
- name: worker-agent-tmp
  emptyDir: {sizeLimit: {{ .Values.ephemeralStorage.volumes.scratch }}}
{{- end -}}
