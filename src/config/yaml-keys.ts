import YAML, { isScalar, type Document, type Pair } from 'yaml'

/**
 * Makes a mapping key the name as written: YAML reads a plain `123`, `1e3`, `1.50`, `0x10`, `null`
 * or `~` as a number or null, which would be the owner 123, 1000, 1.5 (two labels), 16 or '' (the
 * apex). The loader (config/load.ts) and the admin API's edits (store/zone-editor.ts) both take keys
 * this way, so that an edit finds the entry the server serves (region `1:` is the region "1").
 */
export function keyAsWritten(pair: Pair): void {
  const key = pair.key
  if (isScalar(key) && typeof key.value !== 'string' && typeof key.source === 'string') key.value = key.source
}

/**
 * keyAsWritten on every key of every mapping of `doc`, as the build takes them (its own walk does
 * the same while it looks for keys twice): the editor's document, and its check's, read as the build reads them.
 */
export function mapKeysAsWritten(doc: Document): void {
  YAML.visit(doc, {
    Map(_key, map) {
      for (const pair of map.items) keyAsWritten(pair)
    },
  })
}
