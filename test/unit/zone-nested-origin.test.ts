/**
 * Which zones of a set are nested in one another is known from the origin each file's document
 * declares, however it is written (flow style, JSON, a quoted key, a tag, an indented document, a
 * folded scalar): a parent's records below a nested zone's origin, and its targets there, get the
 * same errors as with a block-style pair. The origins were read by a regex on an `origin:` line,
 * which missed all of these: the nested zone's checks then did not apply to it. A file that does
 * not parse still counts (by that regex) as the zone it is meant to be, whose content is unknown.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import YAML from 'yaml'
import { setIssues } from '../helpers/zones.js'

/** The issues of a set of files (`[file, text]`), or [] when it builds. */
const issues = (...files: [string, string][]): string[] => setIssues(files)

/** An issue without its line and column (a flow-style file has its values elsewhere). */
const unplaced = (issue: string) => issue.replace(/^([^:]+):\d+:\d+: /, '$1: ')

/**
 * a.test with, under sub.a.test: a record (never answered from this file), a name server's copy
 * of its glue that differs from the nested zone's, and an MX exchange that only its own copy holds.
 */
const parentBlock = `origin: a.test
soa: { mname: ns1, rname: hostmaster }
ns: [ns1, ns.sub]
records:
  ns1: { A: 192.0.2.53 }
  "@": { MX: { preference: 1, exchange: mail.sub } }
  www.sub: { A: 192.0.2.1 }
  mail.sub: { A: 192.0.2.25 }
  ns.sub: { A: 192.0.2.77 }
`
/** sub.a.test: its name server ns.sub.a.test (at 192.0.2.88), no mail host. */
const childBlock = `origin: sub.a.test
soa: { mname: ns1.a.test., rname: hostmaster.a.test. }
ns: [ns1.a.test.]
records:
  ns: { A: 192.0.2.88 }
  www: { A: 192.0.2.99 }
`
const flow = (text: string) => YAML.stringify(YAML.parse(text), { collectionStyle: 'flow' })

const BLOCK_PAIR = [
  'a.yaml:3:11: ns.1: name server ns.sub.a.test has addresses in this file (192.0.2.77) other than those of zone sub.a.test (sub.yaml), which answers for the name (192.0.2.88); these are never served (a query for the name, and the additional section of this zone\'s NS answers, give that zone\'s), so they only mislead: write the same ones here, or none',
  'a.yaml:6:41: records.@.MX.exchange: MX exchange mail.sub.a.test names nothing in zone sub.a.test (sub.yaml), which answers for the name: it must name a host with addresses (RFC 5321 §5.1) (written "mail.sub" without a final dot, so under the origin; a host outside the zone is written "mail.sub.")',
  'a.yaml:7:3: records.www.sub: www.sub.a.test lies in zone sub.a.test (sub.yaml), which answers for the name in this set of zones: it would never be answered from this file; move it there',
  'a.yaml:8:3: records.mail.sub: mail.sub.a.test lies in zone sub.a.test (sub.yaml), which answers for the name in this set of zones: it would never be answered from this file; move it there',
]

describe('a zone nested in another is known from its document, however its origin is written', () => {
  test('the block-style pair, the reference', () => {
    assert.deepEqual(issues(['a.yaml', parentBlock], ['sub.yaml', childBlock]), BLOCK_PAIR)
  })

  const children: [string, string][] = [
    ['the nested zone\'s file in flow style', flow(childBlock)],
    ['as JSON, on one line', JSON.stringify(YAML.parse(childBlock))],
    ['its origin key quoted', childBlock.replace('origin:', '"origin":')],
    ['its origin tagged', childBlock.replace('origin: sub.a.test', 'origin: !!str sub.a.test')],
    ['its origin a folded scalar', childBlock.replace('origin: sub.a.test', 'origin: >-\n  sub.a.test')],
    ['its origin an explicit key', childBlock.replace('origin: sub.a.test', '? origin\n: sub.a.test')],
    ['the whole document indented', childBlock.replace(/^(?=.)/gm, '  ')],
    ['after a directive and a document start with a comment', `%YAML 1.2\n--- # the nested zone\n${childBlock}`],
  ]
  for (const [name, child] of children) {
    test(`${name}: the parent gets the block-style pair's errors`, () => {
      assert.deepEqual(issues(['a.yaml', parentBlock], ['sub.yaml', child]), BLOCK_PAIR)
    })
  }

  test('the parent in flow style beside the block-style nested zone: the same errors, at the flow file\'s places', () => {
    assert.deepEqual(issues(['a.yaml', flow(parentBlock)], ['sub.yaml', childBlock]).map(unplaced), BLOCK_PAIR.map(unplaced))
  })

  test('both in flow style: the same errors', () => {
    assert.deepEqual(issues(['a.yaml', flow(parentBlock)], ['sub.yaml', flow(childBlock)]).map(unplaced), BLOCK_PAIR.map(unplaced))
  })

  test('a nested zone\'s file that does not parse is still that zone (known by its origin line): the parent\'s MX exchange there is judged once it is fixed', () => {
    const broken = childBlock.replace('  www:', '\twww:')
    // Without the nested zone, mail.sub would name nothing in a.test.
    const found = issues(['a.yaml', parentBlock.replace(/^ {2}mail\.sub:.*\n/m, '')], ['sub.yaml', broken])
    assert.ok(found.length > 0 && found.every((i) => i.startsWith('sub.yaml:')), found.join('\n'))
  })
})
