{{/* Names, labels and small helpers shared by the rayline-operator chart's templates. */}}

{{/* The chart name, or nameOverride. */}}
{{- define "rayline-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The name of the release's objects: fullnameOverride, else the release name when it already holds the
chart name, else "<release>-<chart>". Truncated to 63 characters (the limit of a DNS label).
*/}}
{{- define "rayline-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* chart-version, as the helm.sh/chart label wants it. */}}
{{- define "rayline-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels that select the operator's pods; they must never change between upgrades. */}}
{{- define "rayline-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "rayline-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{/* Labels on every object of the release. */}}
{{- define "rayline-operator.labels" -}}
helm.sh/chart: {{ include "rayline-operator.chart" . }}
{{ include "rayline-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: rayline
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The ServiceAccount the operator runs as. */}}
{{- define "rayline-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "rayline-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* repository:tag, the tag defaulting to the chart's appVersion. */}}
{{- define "rayline-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag | toString) }}
{{- end }}

{{/* The leader-election Lease's name. */}}
{{- define "rayline-operator.leaseName" -}}
{{- default (include "rayline-operator.fullname" .) .Values.leaderElection.id }}
{{- end }}
