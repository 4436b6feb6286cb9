/**
 * A strict reader of the Prometheus text exposition format 0.0.4 (what /metrics serves), for tests:
 * it throws on anything a Prometheus server would refuse or a naming rule forbids, naming the line.
 * Checked: every line is `# HELP`, `# TYPE`, another comment, a sample or empty; metric and label
 * names are valid; label values are quoted with only \\, \" and \n escaped; values are floats (or
 * NaN, +Inf, -Inf, in any case as Prometheus's Go parser takes them); a family has at most one HELP and one TYPE, before its samples, and its samples
 * are contiguous; a sample belongs to its family (histograms: _bucket with `le`, _sum, _count); no
 * series twice. Naming: counters end in `_total`, nothing else does, and no name repeats a word of
 * its prefix (`meridian_process_process_`).
 */

export interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

export interface Family {
  name: string
  type: string
  help: string
  samples: Sample[]
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped'])

function parseValue(text: string, where: string): number {
  // Prometheus reads values with Go's ParseFloat: NaN and Inf in any case (prom-client writes `Nan`).
  if (/^nan$/i.test(text)) return NaN
  if (/^\+?inf$/i.test(text)) return Infinity
  if (/^-inf$/i.test(text)) return -Infinity
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) throw new Error(`${where}: bad value ${JSON.stringify(text)}`)
  return Number(text)
}

/** `{a="x",b="y"}` from `at` (the `{`); returns the labels and the index after `}`. */
function parseLabels(line: string, at: number, where: string): [Record<string, string>, number] {
  const labels: Record<string, string> = {}
  let i = at + 1
  while (line[i] !== '}') {
    const eq = line.indexOf('=', i)
    if (eq < 0) throw new Error(`${where}: label without =`)
    const name = line.slice(i, eq)
    if (!LABEL.test(name)) throw new Error(`${where}: bad label name ${JSON.stringify(name)}`)
    if (name in labels) throw new Error(`${where}: label ${name} twice`)
    if (line[eq + 1] !== '"') throw new Error(`${where}: label ${name}: value not quoted`)
    let v = ''
    let j = eq + 2
    for (;;) {
      const c = line[j]
      if (c === undefined) throw new Error(`${where}: label ${name}: unterminated value`)
      if (c === '"') break
      if (c === '\\') {
        const e = line[j + 1]
        if (e === '\\' || e === '"') v += e
        else if (e === 'n') v += '\n'
        else throw new Error(`${where}: label ${name}: bad escape \\${e}`)
        j += 2
        continue
      }
      v += c
      j++
    }
    labels[name] = v
    i = j + 1
    if (line[i] === ',') i++
    else if (line[i] !== '}') throw new Error(`${where}: expected , or } after label ${name}`)
  }
  return [labels, i + 1]
}

/** The family a sample name belongs to, given the families declared so far. */
function familyOf(sample: string, families: Map<string, Family>): Family | undefined {
  const exact = families.get(sample)
  if (exact && exact.type !== 'histogram' && exact.type !== 'summary') return exact
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (!sample.endsWith(suffix)) continue
    const f = families.get(sample.slice(0, -suffix.length))
    if (f && (f.type === 'histogram' || (f.type === 'summary' && suffix !== '_bucket'))) return f
  }
  return exact
}

/** Parses `text` strictly (see the file's header); throws naming the first offending line. */
export function parseExposition(text: string): Map<string, Family> {
  const families = new Map<string, Family>()
  const series = new Set<string>()
  const done = new Set<string>()
  let current: Family | undefined
  if (text !== '' && !text.endsWith('\n')) throw new Error('the exposition does not end with a newline')
  const lines = text.split('\n')
  lines.pop()
  lines.forEach((line, n) => {
    const where = `line ${n + 1} (${line.slice(0, 80)})`
    if (line === '') return
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(line)
      if (!m) return // another comment
      const [, kind, name, rest = ''] = m
      if (!NAME.test(name!)) throw new Error(`${where}: bad metric name`)
      let f = families.get(name!)
      if (f && done.has(name!)) throw new Error(`${where}: family ${name} declared again after its samples`)
      if (!f) families.set(name!, (f = { name: name!, type: '', help: '', samples: [] }))
      if (f.samples.length > 0) throw new Error(`${where}: ${kind} after the family's samples`)
      if (kind === 'TYPE') {
        if (f.type !== '') throw new Error(`${where}: second TYPE for ${name}`)
        if (!TYPES.has(rest)) throw new Error(`${where}: unknown type ${rest}`)
        f.type = rest
      } else {
        if (f.help !== '') throw new Error(`${where}: second HELP for ${name}`)
        f.help = rest
      }
      if (current && current !== f) done.add(current.name)
      current = f
      return
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line)
    if (!m) throw new Error(`${where}: not a sample`)
    const name = m[1]!
    let i = name.length
    let labels: Record<string, string> = {}
    if (line[i] === '{') [labels, i] = parseLabels(line, i, where)
    if (line[i] !== ' ') throw new Error(`${where}: expected a space before the value`)
    const [value = '', timestamp, extra] = line.slice(i + 1).split(' ')
    if (extra !== undefined || (timestamp !== undefined && !/^-?\d+$/.test(timestamp))) throw new Error(`${where}: trailing text`)
    const f = familyOf(name, families)
    if (!f || f.type === '') throw new Error(`${where}: sample of ${name} without a TYPE`)
    if (done.has(f.name)) throw new Error(`${where}: samples of ${f.name} are not contiguous`)
    if (current && current !== f) done.add(current.name)
    current = f
    if (f.type === 'histogram' && name.endsWith('_bucket') && !('le' in labels)) throw new Error(`${where}: histogram bucket without le`)
    const key = `${name}{${Object.entries(labels).sort().map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(',')}}`
    if (series.has(key)) throw new Error(`${where}: series ${key} twice`)
    series.add(key)
    f.samples.push({ name, labels, value: parseValue(value, where) })
  })
  for (const f of families.values()) {
    if (f.type === '') throw new Error(`family ${f.name}: no TYPE`)
    if (f.type === 'counter' && !f.name.endsWith('_total')) throw new Error(`counter ${f.name} does not end in _total`)
    if (f.type !== 'counter' && f.name.endsWith('_total')) throw new Error(`${f.type} ${f.name} ends in _total, which is for counters`)
    const words = f.name.split('_')
    for (let w = 1; w < words.length; w++) if (words[w] === words[w - 1]) throw new Error(`${f.name}: a word repeated (${words[w]}_${words[w]})`)
  }
  return families
}
