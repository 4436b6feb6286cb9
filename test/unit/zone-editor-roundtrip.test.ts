/**
 * A drain and an undrain through the admin API's edit (applyEdit on the file's document, rendered
 * back by the zone editor) leave a zone file byte for byte as it was, for the shapes operators
 * write: block and one-line flow regions, trailing comments at any distance or in a column, CRLF
 * line ends, no final newline, runs of blank lines, a comment on a region's key line, an
 * indentation of 4 or unindented lists. Operators keep zone files in git: a drain and an undrain
 * must show no diff. Also what the docs say of the shapes that cannot round-trip (a hand-written
 * `drained: false`, or `drained: true` before other keys or with a comment).
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import YAML from 'yaml'
import { applyEdit, type EditOp, type EditZone } from '../../src/admin/edits.js'
import { editText, setAt } from '../../src/store/zone-editor.js'
import { zoneWithRegions } from '../helpers/zones.js'

const ZONE: EditZone = { origin: 'rt.test', regions: [], services: [] }
const edit = (text: string, op: EditOp['op'] & ('drain' | 'undrain'), region = 'eu-west') => editText(text, (d) => applyEdit(d, { op, region }, ZONE))

/** A zone file whose `regions:` section is `regions` (its lines, each ending in a newline). */
const zone = (regions: string) => zoneWithRegions('rt.test', regions, '  www: { regions: all }\n')

const FLOW_EU = '  eu-west: { location: { country: GB }, vips: [192.0.2.1], check: { url: "http://192.0.2.1/h" } }'
const FLOW_US = '  us-east: { location: { country: US }, vips: [192.0.2.2] }'

/** [what the file is, its text]: each must come back byte for byte after a drain and an undrain of eu-west. */
const SHAPES: [string, string][] = [
  ['block regions, comments aligned in a column across lines', zone('  eu-west:\n    location: { country: GB }     # London\n    vips: [192.0.2.1]             # pool A\n    weight: 5                     # half\n  us-east:\n    location: { country: US }\n    vips: [192.0.2.2]\n')],
  ['one-line flow regions without comments', zone(`${FLOW_EU}\n${FLOW_US}\n`)],
  ['a one-line flow region with a trailing comment (3 spaces)', zone(`${FLOW_EU}   # London pool\n${FLOW_US}  # Virginia\n`)],
  ['a one-line flow region with a trailing comment (1 space), unpadded flow style', zone('  eu-west: { location: { country: GB }, vips: [192.0.2.1] } # London pool\n  us-east: { location: { country: US }, vips: [192.0.2.2] }\n').replaceAll('{ ', '{').replaceAll(' }', '}')],
  ['one-line flow regions with their comments in a column, eu-west 2 spaces short of it', zone(`${FLOW_EU}  # London\n  us-east: { location: { country: US }, vips: [192.0.2.2], check: { url: "http://192.0.2.2/h" } } # Virginia\n`)],
  ['one-line flow regions with their comments in a column, eu-west 7 spaces short of it', zone(`${FLOW_EU}       # London\n  us-east: { location: { country: US }, vips: [192.0.2.2], check: { url: "http://192.0.2.2:8080/hz" } } # Virginia\n  ap-south: { location: { country: IN }, vips: [192.0.2.3], check: { url: "http://192.0.2.3:8080/hz" } } # Mumbai\n`)],
  ['one-line flow regions whose comments sit in a column the drained line still fits before', zone(`${FLOW_EU}                        # London\n${FLOW_US}                                                # Virginia\n`)],
  ['a flow region with a trailing comment, CRLF line ends', zone(`${FLOW_EU}   # London pool\n${FLOW_US}\n`).replaceAll('\n', '\r\n')],
  ['block regions with a comment, CRLF line ends', zone('  eu-west:\n    location: { country: GB }   # London\n    vips: [192.0.2.1]\n').replaceAll('\n', '\r\n')],
  ['block regions last in a file without a final newline', zone('').replace(/regions:\n\nservices:\n {2}www: \{ regions: all \}\n$/, 'services:\n  www: { regions: all }\nregions:\n  eu-west:\n    location: { country: GB }   # London\n    vips: [192.0.2.1]')],
  ['a flow region with a comment last in a file without a final newline', zone('').replace(/regions:\n\nservices:\n {2}www: \{ regions: all \}\n$/, `services:\n  www: { regions: all }\nregions:\n${FLOW_EU}   # London`)],
  ['runs of blank lines between sections and at the end', zone('  eu-west:\n    location: { country: GB }\n    vips: [192.0.2.1]\n\n\n').replace('records:', '\n\nrecords:') + '\n\n'],
  ['a comment on the key line of a block region', zone('  eu-west:   # London\n    location: { country: GB }\n    vips: [192.0.2.1]\n  us-east:  # Virginia\n    location: { country: US }\n    vips: [192.0.2.2]\n')],
  ['an indentation of 4 spaces', zone('    eu-west:\n        location: { country: GB }   # London\n        vips: [192.0.2.1]\n    us-east:\n        location: { country: US }\n        vips:\n            - 192.0.2.2\n').replace('  ns1: { A: 192.0.2.53 }', '    ns1: { A: 192.0.2.53 }').replace('  www: { regions: all }', '    www: { regions: all }')],
  ['lists not indented under their key', zone('  eu-west:\n    location: { country: GB }\n    vips:\n    - 192.0.2.1\n    - 192.0.2.9\n').replace('ns: [ns1]', 'ns:\n- ns1')],
  ['a document start and end marker', `---\n${zone(`${FLOW_EU}   # London pool\n`)}...\n`],
]

describe('zone editor: a drain and an undrain leave the file byte for byte as it was', () => {
  for (const [name, text] of SHAPES) {
    test(name, () => {
      const drained = edit(text, 'drain')
      assert.deepEqual(YAML.parse(drained).regions['eu-west'].drained, true, drained)
      assert.equal(edit(drained, 'undrain'), text)
      // And again from the file the first pair gave back: nothing drifts.
      assert.equal(edit(edit(text, 'drain'), 'undrain'), text)
    })
  }

  test('the drain itself changes only the region it drains: one line added, or one flow line grown, its comment kept', () => {
    const text = zone(`${FLOW_EU}   # London pool\n${FLOW_US}  # Virginia\n`)
    assert.equal(edit(text, 'drain'), text.replace(`${FLOW_EU}   # London pool`, `${FLOW_EU.slice(0, -2)}, drained: true }   # London pool`))
    const aligned = zone(`${FLOW_EU}  # London\n  us-east: { location: { country: US }, vips: [192.0.2.2], check: { url: "http://192.0.2.2/h" } } # Virginia\n`)
    assert.equal(edit(aligned, 'drain'), aligned.replace(`${FLOW_EU}  # London`, `${FLOW_EU.slice(0, -2)}, drained: true }  # London`))
  })

  test('a hand-written drained: true, last in its region: an undrain and a drain give the file back', () => {
    for (const text of [
      zone('  eu-west:\n    location: { country: GB }   # London\n    vips: [192.0.2.1]\n    drained: true\n'),
      zone('  eu-west: { location: { country: GB }, vips: [192.0.2.1], drained: true }   # London\n  us-east: { location: { country: US }, vips: [192.0.2.2] }\n'),
      zone('  eu-west: { location: { country: GB }, vips: [192.0.2.1], drained: true } # London\n').replace(/\n$/, ''),
    ]) {
      const undrained = edit(text, 'undrain')
      assert.doesNotMatch(undrained, /drained/)
      assert.equal(edit(undrained, 'drain'), text)
    }
  })

  test('what cannot round-trip, as the docs say: drained: false written by hand, drained: true before other keys or with its own comment', () => {
    // The API writes no `drained: false`: the undrain removes the key, so the line is gone.
    const f = zone('  eu-west:\n    location: { country: GB }\n    drained: false\n    vips: [192.0.2.1]\n')
    assert.equal(edit(edit(f, 'drain'), 'undrain'), f.replace('    drained: false\n', ''))
    // A drain writes `drained: true` at the end of the region, without the comment the undrain took.
    const t = zone('  eu-west:\n    location: { country: GB }\n    drained: true     # maintenance\n    vips: [192.0.2.1]\n')
    assert.equal(edit(edit(t, 'undrain'), 'drain'), t.replace('    drained: true     # maintenance\n', '').replace('    vips: [192.0.2.1]\n', '    vips: [192.0.2.1]\n    drained: true\n'))
  })
})

describe('zone editor: lines an edit does not touch keep their text in these shapes too', () => {
  for (const [name, text] of SHAPES) {
    test(`${name}: a change of one value changes that line only`, () => {
      assert.equal(editText(text, (d) => setAt(d, ['records', 'ns1', 'A'], '192.0.2.54')), text.replace('192.0.2.53', '192.0.2.54'))
    })
  }

  test('a changed line in a column of comments keeps the column; a lone comment close to its code keeps its distance', () => {
    const col = zone('  eu-west:\n    location: { country: GB }     # London\n    vips: [192.0.2.1]             # pool A\n    weight: 5                     # half\n')
    assert.equal(editText(col, (d) => setAt(d, ['regions', 'eu-west', 'weight'], 500)), col.replace('    weight: 5                     # half', '    weight: 500                   # half'))
    assert.equal(editText(col, (d) => setAt(d, ['regions', 'eu-west', 'vips'], ['192.0.2.1', '192.0.2.100', '192.0.2.101'])), col.replace('    vips: [192.0.2.1]             # pool A', '    vips: [192.0.2.1, 192.0.2.100, 192.0.2.101]    # pool A'), 'grown past the column: the old gap, at most 4')
    const lone = zone('  eu-west:\n    location: { country: GB }\n    vips: [192.0.2.1, 192.0.2.2]  # pool A\n')
    assert.equal(editText(lone, (d) => setAt(d, ['regions', 'eu-west', 'vips'], ['192.0.2.1'])), lone.replace('    vips: [192.0.2.1, 192.0.2.2]  # pool A', '    vips: [192.0.2.1]  # pool A'))
  })
})
