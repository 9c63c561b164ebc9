// The Go-template subset the chart tests rely on: whitespace trimming, control structures, variables,
// pipelines and Helm's functions behave as in helm; anything outside the subset fails loudly.

import { describe, expect, it } from 'vitest';
import { collectDefines, renderTemplate, toYaml, TemplateError, type RenderContext } from './go-template.js';

const ctx = (): RenderContext => ({ defines: new Map(), readFile: (p) => `file:${p}` });
const r = (src: string, data: unknown = {}, c = ctx()) => renderTemplate(src, data, c);

describe('go-template subset', () => {
  it('trims whitespace around {{- and -}}', () => {
    expect(r('a  {{- "b" -}}  c')).toBe('abc');
    expect(r('x:\n  {{- if true }}\n  y{{ end }}')).toBe('x:\n  y');
    expect(r('{{/* note */}}a{{- /* trimmed */ -}} b')).toBe('ab');
  });

  it('evaluates fields, if/else if/else, with, range and variables', () => {
    const data = { Values: { a: { b: 'B' }, n: 0, list: ['x', 'y'], m: { k2: 2, k1: 1 } } };
    expect(r('{{ .Values.a.b }}|{{ .Values.missing }}', data)).toBe('B|');
    expect(r('{{ if .Values.n }}n{{ else if .Values.a }}a{{ else }}z{{ end }}', data)).toBe('a');
    expect(r('{{ with .Values.a }}{{ .b }}{{ $.Values.n }}{{ end }}', data)).toBe('B0');
    expect(r('{{ range .Values.list }}[{{ . }}]{{ end }}', data)).toBe('[x][y]');
    expect(r('{{ range $k, $v := .Values.m }}{{ $k }}={{ $v }};{{ end }}', data)).toBe('k1=1;k2=2;');
    expect(r('{{- $x := "a" }}{{ if true }}{{ $x = "b" }}{{ end }}{{ $x }}')).toBe('b');
  });

  it('pipes into Helm functions the way helm does', () => {
    const data = { Values: { tag: '', port: 8080, big: 1000000, labels: { b: '1', a: 'x' }, tol: [{ key: 'k' }] } };
    expect(r('{{ .Values.tag | default "v1" }}', data)).toBe('v1');
    expect(r('{{ .Values.port | quote }} {{ .Values.big }}', data)).toBe('"8080" 1e+06');
    expect(r('l:{{ toYaml .Values.labels | nindent 2 }}', data)).toBe('l:\n  a: x\n  b: "1"');
    expect(toYaml({ tol: [{ key: 'k' }] })).toBe('tol:\n- key: k');
    expect(r('{{ printf "%s-%s" "a" "b" | trunc 3 | trimSuffix "-" }}')).toBe('a-b');
    expect(r('{{ if contains "nats" "my-nats" }}y{{ end }}{{ if not false }}n{{ end }}{{ if and true "" }}x{{ end }}')).toBe('yn');
    expect(r('{{ .Files.Get (printf "d/%s.json" "x") }}')).toBe('file:d/x.json');
    expect(r('{{ range list "a" "b" }}{{ . }}{{ end }}')).toBe('ab');
  });

  it('includes defined templates with their own dot', () => {
    const c = ctx();
    collectDefines('{{- define "t.name" -}}{{ .Chart.Name }}-x{{- end }}', c.defines);
    expect(r('{{ include "t.name" . | quote }}', { Chart: { Name: 'parley' } }, c)).toBe('"parley-x"');
  });

  it('names what it does not support', () => {
    expect(() => r('{{ sha256sum "x" }}')).toThrow(TemplateError);
    expect(() => r('{{ template "x" . }}')).toThrow(/outside the supported subset/);
    expect(() => r('{{ include "nope" . }}')).toThrow(/no template named/);
    expect(() => r('{{ if true }}x')).toThrow(/no {{end}}/);
    expect(() => r('{{ end }}')).toThrow(/unexpected/);
  });
});
