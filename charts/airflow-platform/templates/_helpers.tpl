{{/*
Names, labels, metadata and small lookups shared by every template.
Components are named after Airflow's own: scheduler, dag-processor, triggerer, api-server,
worker, migrations, plus execution-api (the task execution API alone), pgbouncer and helm-test.
*/}}

{{- define "airflow-platform.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Object name prefix: <release>-<name>, or the release alone when it already holds the name. */}}
{{- define "airflow-platform.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "airflow-platform.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Name of a component's objects. Input: (dict "root" $ "component" "scheduler"); an extra
worker queue's objects add (... "queue" "<name>"): <fullname>-worker-<name>. */}}
{{- define "airflow-platform.componentName" -}}
{{- printf "%s-%s" (include "airflow-platform.fullname" .root) (include "airflow-platform.componentLabel" .) -}}
{{- end -}}

{{- define "airflow-platform.componentLabel" -}}
{{- .component }}{{ with .queue }}-{{ . }}{{ end -}}
{{- end -}}

{{/* Labels that select a component's pods. */}}
{{- define "airflow-platform.selectorLabels" -}}
app.kubernetes.io/name: {{ include "airflow-platform.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ include "airflow-platform.componentLabel" . }}
{{- end -}}

{{/* The Kubernetes recommended labels, the only place they are written. */}}
{{- define "airflow-platform.labels" -}}
{{ include "airflow-platform.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: airflow-platform
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{- with .queue }}
airflow-platform.io/worker-queue: {{ . }}
{{- end }}
{{- end -}}

{{/*
metadata: of any object. Input: (dict "root" $ "component" "x" "name" "override"
"annotations" (dict ...)). MWAA Tags become annotations on every object.
*/}}
{{- define "airflow-platform.metadata" -}}
{{- $annotations := merge (dict) (.annotations | default dict) (.root.Values.tags | default dict) -}}
metadata:
  name: {{ .name | default (include "airflow-platform.componentName" .) }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "airflow-platform.labels" . | nindent 4 }}
  {{- with $annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}

{{/* The platform image, by digest when one is given. */}}
{{- define "airflow-platform.image" -}}
{{- $img := .Values.image -}}
{{- if $img.digest -}}
{{- printf "%s@%s" $img.repository $img.digest -}}
{{- else -}}
{{- printf "%s:%s" $img.repository (default .Chart.Version $img.tag) -}}
{{- end -}}
{{- end -}}

{{/* The values key of a component. */}}
{{- define "airflow-platform.valuesKey" -}}
{{- get (dict "scheduler" "scheduler" "dag-processor" "dagProcessor" "triggerer" "triggerer" "api-server" "apiServer" "execution-api" "executionApi" "worker" "workers" "migrations" "migrations") . -}}
{{- end -}}

{{/* A component's own values. Input: (dict "root" $ "component" "x"). Output: YAML. An extra
worker queue's pods take workers.* with the queue's own size, nodeSelector and tolerations. */}}
{{- define "airflow-platform.componentValues" -}}
{{- $own := get .root.Values (include "airflow-platform.valuesKey" .component) -}}
{{- if .queue }}
{{- $own = deepCopy $own -}}
{{- range $key, $value := .workerQueue.values }}{{ $_ := set $own $key $value }}{{ end -}}
{{- end -}}
{{- toYaml $own -}}
{{- end -}}

{{/*
Every class preset (MWAA's sizes and tasks per worker, the allowed scheduler and API server
counts, this chart's PgBouncer pool) from files/environment-classes.json, which
platform/airflow_platform/environment/classes.py writes: the one table the chart and the
environment model share. Output: YAML map, class name -> preset.
*/}}
{{- define "airflow-platform.classes" -}}
{{- toYaml (.Files.Get "files/environment-classes.json" | fromJson).classes -}}
{{- end -}}

{{/* The preset of .Values.environmentClass. Output: YAML. */}}
{{- define "airflow-platform.class" -}}
{{- toYaml (get (fromYaml (include "airflow-platform.classes" .)) .Values.environmentClass) -}}
{{- end -}}

{{/*
Resources of a component: its explicit resources win; otherwise the class size as both
request and limit (a fixed size, like an MWAA Fargate task: Guaranteed QoS).
*/}}
{{- define "airflow-platform.resources" -}}
{{- $own := (fromYaml (include "airflow-platform.componentValues" .)).resources -}}
{{- if $own -}}
{{- toYaml $own -}}
{{- else -}}
{{- $size := get (dict "scheduler" "scheduler" "dag-processor" "scheduler" "triggerer" "webserver" "api-server" "webserver" "execution-api" "webserver" "worker" "worker") .component -}}
{{- $preset := get (fromYaml (include "airflow-platform.class" .root)) $size -}}
{{- toYaml (dict "requests" $preset "limits" $preset) -}}
{{- end -}}
{{- end -}}

{{/* Resources plus an ephemeral-storage request and limit, unless they set their own.
Input: (dict "resources" <requests/limits map> "storage" <ephemeralStorage.containers entry>). */}}
{{- define "airflow-platform.withEphemeralStorage" -}}
{{- $resources := deepCopy (.resources | default dict) -}}
{{- $requests := get $resources "requests" | default dict -}}
{{- $limits := get $resources "limits" | default dict -}}
{{- if not (hasKey $requests "ephemeral-storage") }}{{ $_ := set $requests "ephemeral-storage" .storage.request }}{{ end -}}
{{- if not (hasKey $limits "ephemeral-storage") }}{{ $_ := set $limits "ephemeral-storage" .storage.limit }}{{ end -}}
{{- $_ := set $resources "requests" $requests -}}
{{- $_ := set $resources "limits" $limits -}}
{{- toYaml $resources -}}
{{- end -}}

{{/* Tasks one worker runs at once: explicit, else the class preset. */}}
{{- define "airflow-platform.tasksPerWorker" -}}
{{- if .Values.workers.tasksPerWorker -}}
{{- .Values.workers.tasksPerWorker | int -}}
{{- else -}}
{{- (fromYaml (include "airflow-platform.class" .)).tasks | int -}}
{{- end -}}
{{- end -}}

{{/* Replicas of scheduler-like components; dag-processor and triggerer follow the schedulers. */}}
{{- define "airflow-platform.replicas" -}}
{{- $own := (fromYaml (include "airflow-platform.componentValues" .)).replicas -}}
{{- if kindIs "invalid" $own -}}
{{- .root.Values.scheduler.replicas | int -}}
{{- else -}}
{{- $own | int -}}
{{- end -}}
{{- end -}}

{{/*
The `replicas:` line of a Deployment: the count, or 0 while the environment hibernates
(value `hibernate`). Input: (dict "root" $ "count" N); no count = no line, an autoscaler
owns the number (it leaves a Deployment scaled to 0 alone).
*/}}
{{- define "airflow-platform.replicasLine" -}}
{{- if .root.Values.hibernate -}}
replicas: 0
{{- else if not (kindIs "invalid" .count) -}}
replicas: {{ .count }}
{{- end -}}
{{- end -}}

{{/* IRSA role of a component: its own override, else the execution role. */}}
{{- define "airflow-platform.roleArn" -}}
{{- $sa := (fromYaml (include "airflow-platform.componentValues" .)).serviceAccount | default dict -}}
{{- $sa.roleArn | default .root.Values.executionRoleArn -}}
{{- end -}}

{{/* AWS account id: explicit, else the one in the execution role ARN. */}}
{{- define "airflow-platform.accountId" -}}
{{- if .Values.aws.accountId -}}
{{- .Values.aws.accountId -}}
{{- else if .Values.executionRoleArn -}}
{{- index (splitList ":" .Values.executionRoleArn) 4 -}}
{{- end -}}
{{- end -}}

{{/* In-cluster URL of the API server Service. */}}
{{- define "airflow-platform.apiServerUrl" -}}
{{- printf "http://%s.%s.svc.cluster.local:%d" (include "airflow-platform.componentName" (dict "root" . "component" "api-server")) .Release.Namespace (.Values.apiServer.servicePort | int) -}}
{{- end -}}

{{/* In-cluster URL of the task execution API Service (what task supervisors call). */}}
{{- define "airflow-platform.executionApiUrl" -}}
{{- printf "http://%s.%s.svc.cluster.local:%d/execution/" (include "airflow-platform.componentName" (dict "root" . "component" "execution-api")) .Release.Namespace (.Values.executionApi.servicePort | int) -}}
{{- end -}}

{{/* apiVersions that older control planes (the test tier) lack. */}}
{{- define "airflow-platform.pdbApiVersion" -}}
{{- if or (.Capabilities.APIVersions.Has "policy/v1/PodDisruptionBudget") (not (.Capabilities.APIVersions.Has "policy/v1beta1/PodDisruptionBudget")) -}}
policy/v1
{{- else -}}
policy/v1beta1
{{- end -}}
{{- end -}}

{{- define "airflow-platform.hpaApiVersion" -}}
{{- if or (.Capabilities.APIVersions.Has "autoscaling/v2/HorizontalPodAutoscaler") (not (.Capabilities.APIVersions.Has "autoscaling/v2beta2/HorizontalPodAutoscaler")) -}}
autoscaling/v2
{{- else -}}
autoscaling/v2beta2
{{- end -}}
{{- end -}}

{{/* A PodDisruptionBudget keeping all but one pod of a component. */}}
{{- define "airflow-platform.pdb" -}}
apiVersion: {{ include "airflow-platform.pdbApiVersion" .root }}
kind: PodDisruptionBudget
{{ include "airflow-platform.metadata" . }}
spec:
  maxUnavailable: 1
  selector:
    matchLabels:
      {{- include "airflow-platform.selectorLabels" . | nindent 6 }}
{{- end -}}
