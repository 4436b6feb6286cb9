import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { test } from 'node:test'
import { SerialBook } from '../../src/store/serials.js'

test('an auto serial stays while the content stays and rises when it changes, across restarts', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'serials-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const file = path.join(dir, 'serials.json')
  let clock = 1000
  const book = new SerialBook(file, () => clock)
  await book.load()
  assert.equal(book.serialFor('z.test', 'h1'), 1000)
  assert.equal(book.serialFor('z.test', 'h1'), 1000)
  assert.equal(book.serialFor('z.test', 'h2'), 1001, 'changes within the same second still rise')
  await book.save()
  assert.deepEqual(JSON.parse(await readFile(file, 'utf8')), { 'z.test': { hash: 'h2', serial: 1001 } })
  clock = 500 // a clock set back does not lower the serial
  const again = new SerialBook(file, () => clock)
  await again.load()
  assert.equal(again.serialFor('z.test', 'h2'), 1001)
  assert.equal(again.serialFor('z.test', 'h3'), 1002)
})

test('a planned serial is kept aside until commit, so a rejected set changes nothing', () => {
  const book = new SerialBook(undefined, () => 1000)
  assert.equal(book.serialFor('z.test', 'h1'), 1000)
  const rejected = book.plan()
  assert.equal(rejected.serialOf('z.test', 'h2'), 1001)
  assert.equal(rejected.serialOf('z.test', 'h2'), 1001, 'stable within one plan')
  // not committed: the book still holds h1
  assert.equal(book.serialFor('z.test', 'h1'), 1000)
  const accepted = book.plan()
  assert.equal(accepted.serialOf('z.test', 'h3'), 1001)
  accepted.commit()
  assert.equal(book.serialFor('z.test', 'h3'), 1001)
})
