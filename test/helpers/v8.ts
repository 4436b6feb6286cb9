/** V8 introspection for tests that guard a performance property. */
import { setFlagsFromString } from 'node:v8'

/**
 * V8's `%HaveSameMap(a, b)`: whether two objects share one hidden class. A load stays fast
 * (monomorphic) only while the objects it reads share one; a function built after natives syntax
 * is turned on may call it.
 */
export function sameMapCheck(): (a: object, b: object) => boolean {
  setFlagsFromString('--allow-natives-syntax')
  return new Function('a', 'b', 'return %HaveSameMap(a, b)') as (a: object, b: object) => boolean
}

/** V8's `%IsSmi(x)`: whether a number is kept unboxed (a small integer), as a Map key is then. */
export function isSmiCheck(): (x: number) => boolean {
  setFlagsFromString('--allow-natives-syntax')
  return new Function('x', 'return %IsSmi(x)') as (x: number) => boolean
}
