/**
 * deploy/prometheus-rules.yml (docs/deploy.md) reads only series Meridian exports, with label
 * names those series have: a renamed metric breaks this test, not an operator's alert.
 */
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { test } from 'node:test'
import { parse } from 'yaml'
import { Metrics } from '../../src/metrics/index.js'
import { ROOT } from '../helpers/server.js'

interface Rule {
  alert: string
  expr: string
  for?: string
  labels: { severity: string }
  annotations: { summary: string; description: string }
}

test('every alerting rule reads series /metrics exports, with their own label names', async () => {
  const doc = parse(await readFile(path.join(ROOT, 'deploy', 'prometheus-rules.yml'), 'utf8')) as { groups: { name: string; rules: Rule[] }[] }
  const m = new Metrics({ processMetrics: false })
  // Every optional family a server registers, as the docs test does.
  m.workers(() => 2)
  m.geodb(() => new Date(0))
  m.config(() => false)
  const labelsOf = (name: string): string[] | undefined => (m.registry.getSingleMetric(name) as unknown as { labelNames?: string[] } | undefined)?.labelNames
  const rules = doc.groups.flatMap((g) => g.rules)
  assert.ok(rules.length >= 5)
  assert.equal(new Set(rules.map((r) => r.alert)).size, rules.length, 'alert names are unique')
  for (const r of rules) {
    assert.match(r.alert, /^Meridian[A-Z][A-Za-z]+$/)
    assert.ok(['warning', 'critical'].includes(r.labels.severity), `${r.alert}: severity`)
    assert.ok(r.annotations.summary && r.annotations.description, `${r.alert}: summary and description`)
    const names = r.expr.match(/\bmeridian_[a-z_]*[a-z]\b/g) ?? []
    assert.ok(names.length > 0, `${r.alert} reads a Meridian series`)
    for (const name of names) {
      const labels = labelsOf(name)
      assert.ok(labels !== undefined, `${r.alert}: ${name} is exported`)
      // Each matcher of this series' selector names one of its labels.
      const selector = new RegExp(`${name}\\{([^}]*)\\}`).exec(r.expr)?.[1]
      for (const m of selector?.matchAll(/([a-z_]+)\s*(?:=~|!~|!=|=)/g) ?? []) assert.ok(labels.includes(m[1]!), `${r.alert}: ${name} has a label ${m[1]}`)
    }
    // Labels the annotations name are ones the expression's series carry (or the target's instance).
    for (const [, label] of `${r.annotations.summary} ${r.annotations.description}`.matchAll(/\$labels\.([a-z_]+)/g)) {
      assert.ok(label === 'instance' || names.some((n) => labelsOf(n)!.includes(label!)), `${r.alert}: $labels.${label} is a label of its series`)
    }
  }
})
