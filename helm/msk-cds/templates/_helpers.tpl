{{/* Names ---------------------------------------------------------------------------------------------- */}}

{{- define "mskcds.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "mskcds.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Name of one component's resources: <fullname>-<component> (component: api, worker). */}}
{{- define "mskcds.componentName" -}}
{{- printf "%s-%s" (include "mskcds.fullname" .root) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "mskcds.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "mskcds.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The Secret mounted as MSKCDS_SECRETS_DIR: the operator's, or the one this chart renders. */}}
{{- define "mskcds.secretName" -}}
{{- default (include "mskcds.fullname" .) .Values.secrets.existingSecret -}}
{{- end -}}

{{/* Labels ---------------------------------------------------------------------------------------------- */}}

{{- define "mskcds.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "mskcds.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: msk-cds
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of one component: {root, component}. */}}
{{- define "mskcds.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mskcds.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "mskcds.componentLabels" -}}
{{ include "mskcds.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Images ---------------------------------------------------------------------------------------------- */}}

{{/* repository@digest when a digest is given, else repository:tag (tag defaults to appVersion). */}}
{{- define "mskcds.image" -}}
{{- $image := index .root.Values.image .component -}}
{{- if $image.digest -}}
{{- printf "%s@%s" $image.repository $image.digest -}}
{{- else -}}
{{- printf "%s:%s" $image.repository (default .root.Chart.AppVersion $image.tag) -}}
{{- end -}}
{{- end -}}

{{/* Security -------------------------------------------------------------------------------------------- */}}

{{- define "mskcds.podSecurityContext" -}}
runAsNonRoot: true
{{- with .Values.securityContext.runAsUser }}
runAsUser: {{ . }}
{{- end }}
{{- with .Values.securityContext.runAsGroup }}
runAsGroup: {{ . }}
{{- end }}
{{- with .Values.securityContext.fsGroup }}
fsGroup: {{ . }}
{{- end }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "mskcds.containerSecurityContext" -}}
runAsNonRoot: true
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* What both workloads mount: writable scratch space on a read-only root, the secrets, the models. ------ */}}

{{- define "mskcds.secretsDir" -}}/var/run/secrets/mskcds{{- end -}}

{{- define "mskcds.commonVolumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: 1Gi
- name: cache
  emptyDir:
    sizeLimit: 5Gi
- name: secrets
  secret:
    secretName: {{ include "mskcds.secretName" . }}
    defaultMode: 0440
{{- with .Values.models.volume }}
- name: models
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{- define "mskcds.commonVolumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: cache
  mountPath: /var/cache/mskcds
- name: secrets
  mountPath: {{ include "mskcds.secretsDir" . }}
  readOnly: true
{{- if .Values.models.volume }}
- name: models
  mountPath: {{ .Values.models.mountPath }}
  readOnly: true
{{- end }}
{{- end -}}

{{/* Settings: the ConfigMap (envFrom) plus the secrets directory. */}}
{{- define "mskcds.envFrom" -}}
- configMapRef:
    name: {{ include "mskcds.fullname" . }}
{{- end -}}

{{/* Restarts pods when their configuration changes (a Deployment does not notice a new ConfigMap). */}}
{{- define "mskcds.configChecksums" -}}
checksum/config: {{ include (print $.Template.BasePath "/configmap.yaml") . | sha256sum }}
checksum/secret: {{ include (print $.Template.BasePath "/secret.yaml") . | sha256sum }}
{{- end -}}
