{{/*
The Airflow pod, written once. Every component runs the platform image through the
bootstrap entrypoint with the same environment, volumes and security context, and (except
migrations) the dagsync init container and sidecar. A component passes only what differs:

  (dict "root" $ "component" "scheduler"
        "spec" (dict "args" (list ...)          airflow sub-command and arguments
                     "ports" (list ...)         container ports
                     "startupProbe"/"livenessProbe"/"readinessProbe"
                     "terminationGracePeriodSeconds" N
                     "spreadPolicy" "ScheduleAnyway"|"DoNotSchedule"
                     "dagsync" false            (migrations only)
                     "waitForMigrations" false  (migrations only)
                     "restartPolicy" "Never"    (Jobs)
                     "extraEnv"/"extraMounts"/"extraVolumes"/"extraInitContainers" (list ...)))
                                                what only this component gets (api-server: sign-in)
*/}}

{{- define "airflow-platform.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 50000
runAsGroup: 0
fsGroup: 0
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "airflow-platform.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 50000
runAsGroup: 0
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Mounts of the Airflow container: everything Airflow writes is an emptyDir. A shared
requirements cache (requirements.cache.existingClaim) is written by the scheduler alone and
read-only wherever else user code runs, so a task cannot change what other pods install.
Input: (dict "root" $ "component" name). */}}
{{- define "airflow-platform.airflowMounts" -}}
{{- $shared := and .root.Values.requirements.cache.existingClaim (ne .component "scheduler") -}}
- {name: sync, mountPath: /opt/airflow/sync, readOnly: true}
- {name: tmp, mountPath: /tmp}
- {name: logs, mountPath: /opt/airflow/logs}
- {name: packages, mountPath: /opt/airflow/packages}
- {name: wheel-cache, mountPath: /opt/airflow/wheel-cache{{ if $shared }}, readOnly: true{{ end }}}
- {name: home-cache, mountPath: /home/airflow/.cache}
{{- if and (eq .root.Values.secretsBackend.type "vault") (eq .root.Values.secretsBackend.vault.authType "kubernetes") }}
- {name: vault-token, mountPath: /var/run/secrets/vault, readOnly: true}
{{- end }}
{{- end -}}

{{- define "airflow-platform.volumes" -}}
{{- $disk := .Values.ephemeralStorage.volumes -}}
- {name: sync, emptyDir: {sizeLimit: {{ $disk.sync }}}}
- {name: tmp, emptyDir: {sizeLimit: {{ $disk.tmp }}}}
- {name: logs, emptyDir: {sizeLimit: {{ $disk.logs }}}}
- name: packages
  emptyDir: {sizeLimit: {{ .Values.requirements.packagesSizeLimit }}}
{{- with .Values.requirements.cache.existingClaim }}
{{- /* Shared by every pod: entries are published by atomic renames, so concurrent starts are safe. */}}
- name: wheel-cache
  persistentVolumeClaim: {claimName: {{ . | quote }}}
{{- else }}
- {name: wheel-cache, emptyDir: {sizeLimit: {{ $disk.wheelCache }}}}
{{- end }}
- {name: home-cache, emptyDir: {sizeLimit: {{ $disk.homeCache }}}}
{{- if and (eq .Values.secretsBackend.type "vault") (eq .Values.secretsBackend.vault.authType "kubernetes") }}
{{- /* A short-lived token for Vault only: the Kubernetes API token itself is never mounted. */}}
- name: vault-token
  projected:
    sources:
      - serviceAccountToken:
          path: token
          audience: {{ .Values.secretsBackend.vault.tokenAudience | quote }}
          expirationSeconds: 3600
{{- end }}
{{- end -}}

{{/*
The escape hatches of a component's pod: airflowPods first, then the component's own keys
(lists appended, an extraEnv name set in both taken from the component, podLabels merged,
priorityClassName, topologySpreadConstraints and lifecycle replaced). Jobs (migrations) take
env, volumes, labels and priority only: a sidecar would keep a Job from ever completing.
Input: (dict "root" $ "component" x). Output: YAML.
*/}}
{{- define "airflow-platform.podExtras" -}}
{{- $global := .root.Values.airflowPods -}}
{{- $own := fromYaml (include "airflow-platform.componentValues" .) -}}
{{- $isJob := eq .component "migrations" -}}
{{- $out := dict -}}
{{- $env := list -}}
{{- $ownEnv := dict -}}
{{- range ($own.extraEnv | default list) }}{{ $_ := set $ownEnv .name true }}{{ end -}}
{{- range ($global.extraEnv | default list) }}{{ if not (hasKey $ownEnv .name) }}{{ $env = append $env . }}{{ end }}{{ end -}}
{{- $_ := set $out "extraEnv" (concat $env ($own.extraEnv | default list)) -}}
{{- range $k := list "extraEnvFrom" "extraVolumes" "extraVolumeMounts" "extraContainers" "extraInitContainers" }}
{{- if not (and $isJob (has $k (list "extraContainers" "extraInitContainers"))) }}
{{- $_ := set $out $k (concat (get $global $k | default list) (get $own $k | default list)) }}
{{- end }}
{{- end -}}
{{- $_ := set $out "podLabels" (merge (dict) ($own.podLabels | default dict) ($global.podLabels | default dict)) -}}
{{- $_ := set $out "priorityClassName" ($own.priorityClassName | default $global.priorityClassName) -}}
{{- if not $isJob -}}
{{- $_ := set $out "topologySpreadConstraints" ($own.topologySpreadConstraints | default $global.topologySpreadConstraints) -}}
{{- $_ := set $out "lifecycle" ($own.lifecycle | default $global.lifecycle) -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/* Containers added by users: the restricted security context (their own only with
airflowPods.extraContainersSecurityContext=own) and an ephemeral-storage request and limit.
Input: (dict "root" $ "containers" list). */}}
{{- define "airflow-platform.extraContainers" -}}
{{- $root := .root -}}
{{- range .containers }}
{{- $c := deepCopy . }}
{{- if or (ne $root.Values.airflowPods.extraContainersSecurityContext "own") (not $c.securityContext) }}
{{- $_ := set $c "securityContext" (fromYaml (include "airflow-platform.containerSecurityContext" $root)) }}
{{- end }}
{{- $_ := set $c "resources" (fromYaml (include "airflow-platform.withEphemeralStorage" (dict "resources" $c.resources "storage" $root.Values.ephemeralStorage.containers.small))) }}
- {{ toYaml $c | nindent 2 | trim }}
{{- end }}
{{- end -}}

{{- define "airflow-platform.pod" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
{{- $spec := .spec -}}
{{- $own := fromYaml (include "airflow-platform.componentValues" .) -}}
{{- $extra := fromYaml (include "airflow-platform.podExtras" .) -}}
{{- $dagsync := ternary $spec.dagsync true (hasKey $spec "dagsync") -}}
{{- $waitForMigrations := ternary $spec.waitForMigrations true (hasKey $spec "waitForMigrations") -}}
{{- $isJob := eq ($spec.restartPolicy | default "Always") "Never" -}}
{{- $logType := include "airflow-platform.logType" . -}}
{{- /* Every pod carries the environment's checksum: computed once per rendering (the root
context is shared by all templates), as rendering environment.yaml costs as much as a pod. */ -}}
{{- if not (hasKey $root "airflowPlatformEnvironmentChecksum") -}}
{{- $_ := set $root "airflowPlatformEnvironmentChecksum" (include (print $root.Template.BasePath "/config/environment.yaml") $root | sha256sum) -}}
{{- end -}}
{{- $annotations := dict "airflow-platform.io/environment-checksum" (index $root "airflowPlatformEnvironmentChecksum") -}}
{{- $_ := set $annotations "airflow-platform.io/environment" $v.environmentName -}}
{{- $annotations = merge $annotations ($spec.annotations | default dict) -}}
{{- if and $v.logging.cloudwatch.enabled (get $v.logging $logType).enabled -}}
{{- $_ := set $annotations "airflow-platform.io/cloudwatch-log-group" (include "airflow-platform.logGroup" (dict "root" $root "type" $logType)) -}}
{{- end -}}
metadata:
  labels:
    {{- include "airflow-platform.labels" . | nindent 4 }}
    {{- with $extra.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    {{- toYaml (merge (dict) ($own.podAnnotations | default dict) $annotations) | nindent 4 }}
spec:
  serviceAccountName: {{ include "airflow-platform.componentName" (dict "root" $root "component" .component) }}
  automountServiceAccountToken: false
  {{- with $spec.restartPolicy }}
  restartPolicy: {{ . }}
  {{- end }}
  {{- with $spec.terminationGracePeriodSeconds }}
  terminationGracePeriodSeconds: {{ . }}
  {{- end }}
  securityContext:
    {{- include "airflow-platform.podSecurityContext" $root | nindent 4 }}
  {{- with $v.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $extra.priorityClassName }}
  priorityClassName: {{ . | quote }}
  {{- end }}
  {{- if $extra.topologySpreadConstraints }}
  topologySpreadConstraints:
    {{- range $extra.topologySpreadConstraints }}
    {{- /* Without a selector a constraint counts no pod: it spreads this component's. */}}
    {{- $tsc := merge (dict) . (dict "labelSelector" (dict "matchLabels" (fromYaml (include "airflow-platform.selectorLabels" $)))) }}
    - {{ toYaml $tsc | nindent 6 | trim }}
    {{- end }}
  {{- else if not $isJob }}
  topologySpreadConstraints:
    {{- range list "topology.kubernetes.io/zone" "kubernetes.io/hostname" }}
    - maxSkew: 1
      topologyKey: {{ . }}
      whenUnsatisfiable: {{ $spec.spreadPolicy | default "ScheduleAnyway" }}
      labelSelector:
        matchLabels:
          {{- include "airflow-platform.selectorLabels" $ | nindent 10 }}
    {{- end }}
  {{- end }}
  {{- with $own.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $own.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $own.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- if or $dagsync $waitForMigrations $spec.extraInitContainers $extra.extraInitContainers }}
  initContainers:
    {{- if $dagsync }}
    {{- include "airflow-platform.dagsyncContainer" (dict "root" $root "once" true "component" .component) | nindent 4 }}
    {{- end }}
    {{- if $waitForMigrations }}
    - name: wait-for-migrations
      image: {{ include "airflow-platform.image" $root | quote }}
      imagePullPolicy: {{ $v.image.pullPolicy }}
      command: ["airflow", "db", "check-migrations", "--migration-wait-timeout", "{{ $v.migrations.waitTimeoutSeconds }}"]
      env:
        {{- /* It reads the schema version only: the database URL, none of the keys. */}}
        {{- include "airflow-platform.env" (merge (dict "secretsOf" "migrations") .) | nindent 8 }}
      resources:
        {{- include "airflow-platform.withEphemeralStorage" (dict "resources" $v.migrations.resources "storage" $v.ephemeralStorage.containers.airflow) | nindent 8 }}
      securityContext:
        {{- include "airflow-platform.containerSecurityContext" $root | nindent 8 }}
      volumeMounts:
        {{- include "airflow-platform.airflowMounts" . | nindent 8 }}
    {{- end }}
    {{- with $spec.extraInitContainers }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
    {{- include "airflow-platform.extraContainers" (dict "root" $root "containers" $extra.extraInitContainers) | nindent 4 }}
  {{- end }}
  containers:
    - name: {{ .component }}
      image: {{ include "airflow-platform.image" $root | quote }}
      imagePullPolicy: {{ $v.image.pullPolicy }}
      command: ["airflow-platform", "bootstrap", "--component", {{ .component | quote }}, "--", "airflow"]
      args: {{ toJson $spec.args }}
      env:
        {{- include "airflow-platform.env" . | nindent 8 }}
        {{- with $spec.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
        {{- with $extra.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- with $extra.extraEnvFrom }}
      envFrom:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $extra.lifecycle }}
      lifecycle:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $spec.ports }}
      ports:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- range $probe := list "startupProbe" "livenessProbe" "readinessProbe" }}
      {{- with get $spec $probe }}
      {{ $probe }}:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- end }}
      {{- $resources := ternary $v.migrations.resources (fromYaml (include "airflow-platform.resources" .)) (eq .component "migrations") }}
      resources:
        {{- include "airflow-platform.withEphemeralStorage" (dict "resources" $resources "storage" $v.ephemeralStorage.containers.airflow) | nindent 8 }}
      securityContext:
        {{- include "airflow-platform.containerSecurityContext" $root | nindent 8 }}
      volumeMounts:
        {{- include "airflow-platform.airflowMounts" . | nindent 8 }}
        {{- with include "airflow-platform.jwtSigningMounts" . }}
        {{- . | nindent 8 }}
        {{- end }}
        {{- with $spec.extraMounts }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
        {{- with $extra.extraVolumeMounts }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    {{- if $dagsync }}
    {{- include "airflow-platform.dagsyncContainer" (dict "root" $root "once" false "component" .component) | nindent 4 }}
    {{- end }}
    {{- include "airflow-platform.extraContainers" (dict "root" $root "containers" $extra.extraContainers) | nindent 4 }}
  volumes:
    {{- include "airflow-platform.volumes" $root | nindent 4 }}
    {{- with include "airflow-platform.jwtSigningVolumes" . }}
    {{- . | nindent 4 }}
    {{- end }}
    {{- with $spec.extraVolumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
    {{- with $extra.extraVolumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end -}}
