{{/*
Worker queues. Airflow's default queue is served by the `worker` Deployment (workers.*);
each entry of workers.queues gets a Deployment, ScaledObject (or HPA) and NetworkPolicy of
its own, named and labelled worker-<name>, from the same templates. A queue's context is
(dict "root" $ "component" "worker" "queue" "<name>" "workerQueue" <queue>): `component`
stays worker (service account, secrets, configuration, log group), `queue` only changes the
objects' name and component label, so no two Deployments select each other's pods.
*/}}

{{/* Every queue, the default first, each with its sizes resolved. Output: YAML list. */}}
{{- define "airflow-platform.workerQueues" -}}
{{- $v := .Values -}}
{{- $w := $v.workers -}}
{{- $out := list (dict "name" "default" "default" true "sqsQueueUrl" $v.celery.sqsQueueUrl
  "minWorkers" ($w.minWorkers | int) "maxWorkers" ($w.maxWorkers | int)
  "tasks" (include "airflow-platform.tasksPerWorker" . | int)
  "replacementStrategy" $w.replacementStrategy) -}}
{{- $classes := fromYaml (include "airflow-platform.classes" .) -}}
{{- range $w.queues }}
{{- $q := dict "name" .name "default" false "sqsQueueUrl" .sqsQueueUrl
  "minWorkers" (.minWorkers | int) "maxWorkers" (.maxWorkers | int)
  "replacementStrategy" (.replacementStrategy | default $w.replacementStrategy) -}}
{{- $class := get $classes (.environmentClass | default "") -}}
{{- $tasks := include "airflow-platform.tasksPerWorker" $ | int -}}
{{- if .tasksPerWorker }}{{ $tasks = .tasksPerWorker | int }}{{ else if $class }}{{ $tasks = $class.tasks | int }}{{ end -}}
{{- $_ := set $q "tasks" $tasks -}}
{{- /* What the queue's pods take instead of the workers.* value of the same name. */ -}}
{{- $own := dict -}}
{{- if .resources }}{{ $_ := set $own "resources" .resources }}{{ else if $class }}{{ $_ := set $own "resources" (dict "requests" $class.worker "limits" $class.worker) }}{{ end -}}
{{- if .nodeSelector }}{{ $_ := set $own "nodeSelector" .nodeSelector }}{{ end -}}
{{- if .tolerations }}{{ $_ := set $own "tolerations" .tolerations }}{{ end -}}
{{- $_ := set $q "values" $own -}}
{{- $out = append $out $q -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/* The context of a queue's objects. Input: (dict "root" $ "workerQueue" <queue>). */}}
{{- define "airflow-platform.workerQueueContext" -}}
{{- $c := dict "root" .root "component" "worker" "workerQueue" .workerQueue -}}
{{- if not .workerQueue.default }}{{ $_ := set $c "queue" .workerQueue.name }}{{ end -}}
{{- toYaml (omit $c "root") -}}
{{- end -}}

{{/* The component label of each worker Deployment's pods: worker, worker-<name>... */}}
{{- define "airflow-platform.workerComponents" -}}
{{- $out := list "worker" -}}
{{- range .Values.workers.queues }}{{ $out = append $out (printf "worker-%s" .name) }}{{ end -}}
{{- toJson $out -}}
{{- end -}}

{{/* A pod selector for every worker pod of the release (NetworkPolicy peers): the worker
component alone while there are no extra queues. */}}
{{- define "airflow-platform.workerPodSelector" -}}
{{- $workers := fromJsonArray (include "airflow-platform.workerComponents" .) -}}
{{- if eq (len $workers) 1 -}}
{{- toJson (dict "podSelector" (dict "matchLabels" (include "airflow-platform.selectorLabels" (dict "root" . "component" "worker") | fromYaml))) -}}
{{- else -}}
{{- $labels := dict "app.kubernetes.io/name" (include "airflow-platform.name" .) "app.kubernetes.io/instance" .Release.Name -}}
{{- toJson (dict "podSelector" (dict "matchLabels" $labels "matchExpressions" (list (dict "key" "app.kubernetes.io/component" "operator" "In" "values" $workers)))) -}}
{{- end -}}
{{- end -}}

{{/* The Celery queues Airflow may send to and their SQS URLs (kombu's predefined_queues):
the scheduler sends a task with queue=X to X's URL; a queue not listed here is refused. */}}
{{- define "airflow-platform.predefinedQueues" -}}
{{- $out := dict "default" (dict "url" .Values.celery.sqsQueueUrl) -}}
{{- range .Values.workers.queues }}{{ $_ := set $out .name (dict "url" .sqsQueueUrl) }}{{ end -}}
{{- toJson $out -}}
{{- end -}}

{{/* The task_instance rows of a queue, for the KEDA formula: the default queue takes every
queue but the extra ones (so nothing sent elsewhere is left without a worker), an extra
queue only its own. No filter at all while there are no extra queues. */}}
{{- define "airflow-platform.queueFilter" -}}
{{- $root := .root -}}
{{- if not .workerQueue.default -}}
{{- printf " AND queue = '%s'" .workerQueue.name -}}
{{- else if $root.Values.workers.queues -}}
{{- $names := list -}}
{{- range $root.Values.workers.queues }}{{ $names = append $names (printf "'%s'" .name) }}{{ end -}}
{{- printf " AND queue NOT IN (%s)" (join ", " $names) -}}
{{- end -}}
{{- end -}}
