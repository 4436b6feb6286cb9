/**
 * The places a zone file may name instead of coordinates: `location: { country: GB }` (the
 * country's centroid) and `location: { city: DUB }` (geodb/places.json), as the server and its
 * zone-set build thread resolve them.
 */
import { countryLocation, placeLocation } from '../geo/countries.js'
import type { BuildOptions } from './load.js'

export const PLACES: BuildOptions = {
  countryPoint: (code) => countryLocation(code),
  cityPoint: (code) => placeLocation(code),
}
