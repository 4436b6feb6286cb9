/** The YAML examples of the docs, read from the Markdown itself so that a test of an example cannot drift from it. */
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { ROOT } from './server.js'

/**
 * The first ```yaml block of `docs/<file>`, or of its section `## <heading>` when one is given;
 * asserts there is one.
 */
export async function docsYaml(file: string, heading?: string): Promise<string> {
  const md = await readFile(path.join(ROOT, 'docs', file), 'utf8')
  const section = heading === undefined ? md : md.slice(md.indexOf(`## ${heading}`))
  const yaml = /```yaml\n([\s\S]*?)```/.exec(section)?.[1]
  assert.ok(yaml, `docs/${file} has a yaml block${heading === undefined ? '' : ` under "${heading}"`}`)
  return yaml
}
