{{/*
Rules values.schema.json cannot express (comparisons between fields, rules that depend on
the environment class, fields required together). Each failure names the field and the fix.
*/}}
{{- define "airflow-platform.validate" -}}
{{- $v := .Values -}}
{{- $required := dict
  "database.existingSecret" (list $v.database.existingSecret "the name of an existing Secret holding the metadata database URL")
  "celery.sqsQueueUrl" (list $v.celery.sqsQueueUrl "the URL of the SQS queue Celery uses (https://sqs.<region>.amazonaws.com/<account>/<queue>)")
  "dags.s3.bucket" (list $v.dags.s3.bucket "the S3 bucket holding dags/, plugins.zip, requirements.txt")
  "secrets.fernetKey.secretName" (list $v.secrets.fernetKey.secretName "an existing Secret holding the Fernet key")
  "secrets.apiSecretKey.secretName" (list $v.secrets.apiSecretKey.secretName "an existing Secret holding the API secret key")
-}}
{{- $signing := $v.secrets.jwtSigning -}}
{{- if $signing.enabled }}
{{- $_ := set $required "secrets.jwtSigning.privateKey.secretName" (list $signing.privateKey.secretName "an existing Secret holding the current private key (PEM) under secrets.jwtSigning.privateKey.key (docs/runbook.md makes one)") }}
{{- $_ := set $required "secrets.jwtSigning.publicKeys.name" (list $signing.publicKeys.name (printf "an existing %s holding the JWKS of trusted public keys under secrets.jwtSigning.publicKeys.key" $signing.publicKeys.kind)) }}
{{- if $v.secrets.jwtSecret.secretName }}
{{- fail (printf "\nsecrets.jwtSecret.secretName=%q and secrets.jwtSigning.enabled=true: Airflow signs tokens one way; set secrets.jwtSecret.secretName to \"\" (the private key replaces it), or secrets.jwtSigning.enabled=false." $v.secrets.jwtSecret.secretName) }}
{{- end }}
{{- else }}
{{- $_ := set $required "secrets.jwtSecret.secretName" (list $v.secrets.jwtSecret.secretName "an existing Secret holding the JWT secret (or turn on secrets.jwtSigning)") }}
{{- end }}
{{- range $field, $rule := $required }}
{{- if not (index $rule 0) }}
{{- fail (printf "\n%s is required: set it to %s." $field (index $rule 1)) }}
{{- end }}
{{- end }}
{{- if and $v.metrics.statsdExporter.enabled $v.metrics.statsd.host }}
{{- fail (printf "\nmetrics.statsd.host=%q and metrics.statsdExporter.enabled=true: Airflow sends StatsD to one place; set metrics.statsd.host to \"\" (the exporter's Service is used) or metrics.statsdExporter.enabled=false." $v.metrics.statsd.host) }}
{{- end }}
{{- if and $v.metrics.statsdExporter.enabled (not $v.metrics.statsd.enabled) }}
{{- fail "\nmetrics.statsdExporter.enabled=true needs metrics.statsd.enabled=true: Airflow would send it nothing." }}
{{- end }}
{{- /* The fewest schedulers and API servers the class allows (files/environment-classes.json). */ -}}
{{- $classes := fromYaml (include "airflow-platform.classes" .) -}}
{{- $class := get $classes $v.environmentClass -}}
{{- range $field, $count := dict "scheduler.replicas" (list $v.scheduler.replicas $class.schedulers) "apiServer.minReplicas" (list $v.apiServer.minReplicas $class.webservers) }}
{{- $n := index $count 0 | int }}
{{- $lo := (index $count 1).min | int }}
{{- if lt $n $lo }}
{{- $others := list }}
{{- range $name, $c := $classes }}{{ if le (int (get (ternary $c.schedulers $c.webservers (eq $field "scheduler.replicas")) "min")) $n }}{{ $others = append $others $name }}{{ end }}{{ end }}
{{- $hi := (index $count 1).max | int }}
{{- $where := ternary (printf "; %d is allowed with %s" $n (join ", " $others)) "" (gt (len $others) 0) }}
{{- fail (printf "\n%s=%d is below what environmentClass %s allows (%d to %d%s): set %s between %d and %d." $field $n $v.environmentClass $lo $hi $where $field $lo $hi) }}
{{- end }}
{{- end }}
{{- if gt (int $v.workers.minWorkers) (int $v.workers.maxWorkers) }}
{{- fail (printf "\nworkers.minWorkers (%d) is greater than workers.maxWorkers (%d): raise workers.maxWorkers or lower workers.minWorkers." (int $v.workers.minWorkers) (int $v.workers.maxWorkers)) }}
{{- end }}
{{- include "airflow-platform.validateWorkerQueues" . }}
{{- if gt (int $v.apiServer.minReplicas) (int $v.apiServer.maxReplicas) }}
{{- fail (printf "\napiServer.minReplicas (%d) is greater than apiServer.maxReplicas (%d): raise apiServer.maxReplicas or lower apiServer.minReplicas." (int $v.apiServer.minReplicas) (int $v.apiServer.maxReplicas)) }}
{{- end }}
{{- if and $v.logging.cloudwatch.enabled $v.logging.task.enabled (eq $v.logging.task.destination "cloudwatch") (not (include "airflow-platform.accountId" .)) }}
{{- fail "\nlogging.cloudwatch.enabled needs the AWS account id for the Task log group ARN: set aws.accountId or executionRoleArn." }}
{{- end }}
{{- if $v.pgbouncer.enabled }}
{{- if not $v.pgbouncer.connectionSecret.secretName }}
{{- fail "\npgbouncer.connectionSecret.secretName is required with pgbouncer.enabled: set it to an existing Secret holding the SQLAlchemy URL through PgBouncer." }}
{{- end }}
{{- end }}
{{- include "airflow-platform.validateConfigOptions" . }}
{{- include "airflow-platform.validateEscapeHatches" . }}
{{- if eq $v.secretsBackend.type "vault" }}
{{- if not $v.secretsBackend.vault.url }}
{{- fail "\nsecretsBackend.vault.url is required with secretsBackend.type=vault: set it to the Vault address (https://vault.example:8200)." }}
{{- end }}
{{- if not $v.secretsBackend.vault.role }}
{{- fail "\nsecretsBackend.vault.role is required with secretsBackend.type=vault: set it to the Vault role the pods log in as." }}
{{- end }}
{{- end }}
{{- $a := $v.auth -}}
{{- if eq $a.manager "fab" }}
{{- $oidc := dict
  "auth.oidc.issuerUrl" (list $a.oidc.issuerUrl "the issuer URL of your OpenID Connect provider (https://...), or set auth.manager")
  "auth.oidc.clientId" (list $a.oidc.clientId "the client id registered at the provider")
  "auth.oidc.clientSecret.existingSecret" (list $a.oidc.clientSecret.existingSecret "an existing Secret holding the client secret")
}}
{{- range $field, $rule := $oidc }}
{{- if not (index $rule 0) }}
{{- fail (printf "\n%s is required with auth.manager=fab (OpenID Connect sign-in): set it to %s." $field (index $rule 1)) }}
{{- end }}
{{- end }}
{{- else if eq $a.manager "aws" }}
{{- if not $a.aws.avpPolicyStoreId }}
{{- fail "\nauth.aws.avpPolicyStoreId is required with auth.manager=aws: set it to the Amazon Verified Permissions policy store id." }}
{{- end }}
{{- if not $a.aws.samlMetadataUrl }}
{{- fail "\nauth.aws.samlMetadataUrl is required with auth.manager=aws: set it to the SAML metadata URL of the IAM Identity Center application." }}
{{- end }}
{{- else if eq $a.manager "simple" }}
{{- if and $v.ingress.enabled (eq $v.ingress.accessMode "PUBLIC_ONLY") }}
{{- fail "\nauth.manager=simple (SimpleAuthManager, for trying the chart out) is refused with ingress.accessMode=PUBLIC_ONLY: set auth.manager=fab (OpenID Connect) or ingress.accessMode=PRIVATE_ONLY." }}
{{- end }}
{{- if not $a.simple.passwordsSecret.name }}
{{- fail "\nauth.simple.passwordsSecret.name is required with auth.manager=simple: set it to an existing Secret holding {\"user\": \"password\"} for every user of auth.simple.users (the chart never generates passwords)." }}
{{- end }}
{{- end }}
{{- if and $v.ingress.enabled (eq $v.ingress.accessMode "PUBLIC_ONLY") (not $v.ingress.certificateArn) }}
{{- fail "\ningress.accessMode=PUBLIC_ONLY needs HTTPS: set ingress.certificateArn to an ACM certificate ARN, or ingress.accessMode=PRIVATE_ONLY." }}
{{- end }}
{{- end -}}

{{/*
Why users may not set an Airflow option, from files/config-rules.json (written from the
Python rules by `python -m airflow_platform.environment.config_rules`): "" when they may.
Input: (dict "rules" $rules "key" "section.key").
*/}}
{{- define "airflow-platform.configRefusal" -}}
{{- $key := .key -}}
{{- $rule := get .rules.keys $key -}}
{{- range $prefix, $r := .rules.prefixes }}
{{- if and (not $rule) (hasPrefix $prefix $key) }}{{ $rule = $r }}{{ end }}
{{- end }}
{{- range $suffix, $r := .rules.suffixes }}
{{- if and (not $rule) (hasSuffix $suffix $key) }}{{ $rule = $r }}{{ end }}
{{- end }}
{{- with $rule -}}
{{- $fix := regexReplaceAll " \\(environment spec: [^)]*\\)" .fix "" -}}
owned by the platform and cannot be set ({{ .why }}); remove it{{ if $fix }}, and {{ $fix }}{{ end }}
{{- end -}}
{{- end -}}

{{/* airflowConfigurationOptions and airflowConfigurationSecrets against the shared rules. */}}
{{- define "airflow-platform.validateConfigOptions" -}}
{{- $rules := .Files.Get "files/config-rules.json" | fromJson -}}
{{- $secrets := .Values.airflowConfigurationSecrets -}}
{{- range $key, $value := .Values.airflowConfigurationOptions }}
{{- $refused := include "airflow-platform.configRefusal" (dict "rules" $rules "key" $key) }}
{{- $where := printf "\nairflowConfigurationOptions[%q]" $key }}
{{- if $refused }}
{{- fail (printf "%s is %s." $where $refused) }}
{{- else if and (regexMatch $rules.sensitiveName (regexReplaceAll "^[^.]*[.]" $key "")) (not (regexMatch $rules.fileName $key)) }}
{{- fail (printf "%s holds a credential and is never rendered as a plain value: remove it and reference a Kubernetes Secret instead (airflowConfigurationSecrets: {%q: {secretName: ..., key: ...}})." $where $key) }}
{{- else if regexMatch $rules.credentialUrl (toString $value) }}
{{- fail (printf "%s is a URL with a password, which is never rendered as a plain value: remove it, %s." $where $rules.secretFix) }}
{{- end }}
{{- if hasKey $secrets $key }}
{{- fail (printf "%s is also in airflowConfigurationSecrets: set %q in one of them only." $where $key) }}
{{- end }}
{{- end }}
{{- range $key, $ref := $secrets }}
{{- $refused := include "airflow-platform.configRefusal" (dict "rules" $rules "key" $key) }}
{{- if $refused }}
{{- fail (printf "\nairflowConfigurationSecrets[%q] is %s." $key $refused) }}
{{- end }}
{{- end }}
{{- end -}}


{{/*
Why an environment variable of extraEnv may not be set: "" when it may. The chart's own
variables (whatever any component renders), the startup-protected names, and AIRFLOW__S__K of an
option the config rules refuse or that holds a credential.
Input: (dict "root" $ "name" NAME "owned" (dict NAME true ...)).
*/}}
{{- define "airflow-platform.envRefusal" -}}
{{- $name := .name -}}
{{- $rules := .root.Files.Get "files/config-rules.json" | fromJson -}}
{{- $key := "" -}}
{{- if regexMatch "^AIRFLOW__[A-Za-z0-9_]+__[A-Za-z0-9_]+$" $name -}}
{{- $key = regexReplaceAll "^AIRFLOW__([A-Za-z0-9_]+?)__" $name "${1}." | lower -}}
{{- end -}}
{{- $refused := "" -}}
{{- if $key }}{{ $refused = include "airflow-platform.configRefusal" (dict "rules" $rules "key" $key) }}{{ end -}}
{{- if $refused -}}
the option {{ $key }}, {{ $refused }}
{{- else if hasKey .owned $name -}}
set by the chart and cannot be overridden{{ if $key }}: set the option through airflowConfigurationOptions[{{ $key | quote }}] (or airflowConfigurationSecrets) instead{{ end }}
{{- else if or (has $name (list "AIRFLOW_VERSION" "MWAA_AIRFLOW_COMPONENT" "PYTHONPATH" "PYTHONHOME")) (hasPrefix "MWAA__" $name) (hasPrefix "AIRFLOW_PLATFORM_" $name) -}}
set by the platform image and bootstrap, and cannot be overridden
{{- else if has $name (list "AWS_ROLE_ARN" "AWS_WEB_IDENTITY_TOKEN_FILE" "AWS_CONTAINER_CREDENTIALS_FULL_URI" "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") -}}
the pod's AWS identity: remove it and set <component>.serviceAccount.roleArn or executionRoleArn instead
{{- else if and $key (regexMatch $rules.sensitiveName (regexReplaceAll "^[^.]*[.]" $key "")) (not (regexMatch $rules.fileName $key)) -}}
the option {{ $key }}, which holds a credential: remove it and set airflowConfigurationSecrets: {{ printf "{%q: {secretName: ..., key: ...}}" $key }}
{{- end -}}
{{- end -}}

{{/* extraEnv, extraVolumes and extraContainers of airflowPods and every component. */}}
{{- define "airflow-platform.validateEscapeHatches" -}}
{{- $root := . -}}
{{- $owned := dict -}}
{{- $volumes := dict -}}
{{- range $component := list "scheduler" "dag-processor" "triggerer" "api-server" "execution-api" "worker" "migrations" }}
{{- range fromYamlArray (include "airflow-platform.env" (dict "root" $root "component" $component)) }}{{ $_ := set $owned .name true }}{{ end }}
{{- end }}
{{- range fromYamlArray (include "airflow-platform.volumes" $root) }}{{ $_ := set $volumes .name true }}{{ end }}
{{- $sources := dict "airflowPods" .Values.airflowPods -}}
{{- range $component := list "scheduler" "dagProcessor" "triggerer" "apiServer" "executionApi" "workers" "migrations" }}
{{- $_ := set $sources $component (get $root.Values $component) }}
{{- end }}
{{- range $where, $src := $sources }}
{{- range $i, $e := $src.extraEnv | default list }}
{{- $why := include "airflow-platform.envRefusal" (dict "root" $root "name" $e.name "owned" $owned) }}
{{- if $why }}
{{- fail (printf "\n%s.extraEnv[%d] %s is %s." $where $i $e.name $why) }}
{{- end }}
{{- if and $e.value (regexMatch (fromJson ($root.Files.Get "files/config-rules.json")).credentialUrl $e.value) }}
{{- fail (printf "\n%s.extraEnv[%d] %s is a URL with a password, which is never rendered as a plain value: take it from a Secret (valueFrom.secretKeyRef)." $where $i $e.name) }}
{{- end }}
{{- end }}
{{- range $label, $_ := $src.podLabels | default dict }}
{{- if regexMatch "^(app[.]kubernetes[.]io|helm[.]sh)/" $label }}
{{- fail (printf "\n%s.podLabels[%q] is a label the chart sets (its selectors rely on it): remove it; choose a key outside app.kubernetes.io/ and helm.sh/." $where $label) }}
{{- end }}
{{- end }}
{{- range $i, $vol := $src.extraVolumes | default list }}
{{- if hasKey $volumes $vol.name }}
{{- fail (printf "\n%s.extraVolumes[%d] is named %q, a volume of the chart's own: choose another name." $where $i $vol.name) }}
{{- end }}
{{- end }}
{{- if ne $root.Values.airflowPods.extraContainersSecurityContext "own" }}
{{- range $list := list "extraContainers" "extraInitContainers" }}
{{- range $i, $c := get $src $list | default list }}
{{- if $c.securityContext }}
{{- fail (printf "\n%s.%s[%d] (%s) sets a securityContext: added containers run with the chart's restricted one; remove it, or set airflowPods.extraContainersSecurityContext=own to use the container's own." $where $list $i $c.name) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{/* workers.queues: names and SQS URLs unique (the default queue's included), one size each. */}}
{{- define "airflow-platform.validateWorkerQueues" -}}
{{- $names := dict -}}
{{- $urls := dict "default" .Values.celery.sqsQueueUrl -}}
{{- range $i, $q := .Values.workers.queues }}
{{- $at := printf "workers.queues[%d]" $i }}
{{- if eq $q.name "default" }}
{{- fail (printf "\n%s.name=default: the default queue is workers.* itself (its Deployment is worker); give this queue another name." $at) }}
{{- end }}
{{- if hasKey $names $q.name }}
{{- fail (printf "\n%s.name=%q is already the name of workers.queues[%d]: queue names must be unique." $at $q.name (get $names $q.name)) }}
{{- end }}
{{- $_ := set $names $q.name $i }}
{{- range $other, $url := $urls }}
{{- if eq $url $q.sqsQueueUrl }}
{{- fail (printf "\n%s.sqsQueueUrl is already the SQS queue of %s: each queue needs an SQS queue of its own, or workers of one queue would run the other's tasks." $at (ternary "the default queue (celery.sqsQueueUrl)" (printf "queue %q" $other) (eq $other "default"))) }}
{{- end }}
{{- end }}
{{- $_ := set $urls $q.name $q.sqsQueueUrl }}
{{- if and $q.environmentClass $q.resources }}
{{- fail (printf "\n%s sets both environmentClass and resources: a queue's size is one or the other; remove one of them." $at) }}
{{- end }}
{{- if gt (int $q.minWorkers) (int $q.maxWorkers) }}
{{- fail (printf "\n%s.minWorkers (%d) is greater than its maxWorkers (%d): raise maxWorkers or lower minWorkers." $at (int $q.minWorkers) (int $q.maxWorkers)) }}
{{- end }}
{{- end }}
{{- end -}}
