/**
 * Country and place coordinates (geodb/countries.json, geodb/places.json), read once on first use,
 * and great-circle distance.
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { CONTINENT_CODES, type ContinentCode, type CountryInfo, type GeoPoint, type PlaceInfo } from './types.js'

/** The geodb/ directory of this installation (dist/src/geo/ -> ../../../geodb). */
export const GEODB_DIR = fileURLToPath(new URL('../../../geodb/', import.meta.url))

export { EARTH_RADIUS_KM, greatCircleKm } from '../model/gslb.js'

let countries: ReadonlyMap<string, CountryInfo> | undefined
let places: ReadonlyMap<string, PlaceInfo> | undefined

function readJson(file: string): Record<string, Record<string, unknown>> {
  const path = GEODB_DIR + file
  let data: unknown
  try {
    data = JSON.parse(readFileSync(path, 'utf8'))
  } catch (err) {
    throw new Error(`cannot read ${path}: ${(err as Error).message}`, { cause: err })
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) throw new Error(`${path}: expected an object keyed by code`)
  return data as Record<string, Record<string, unknown>>
}

function point(v: Record<string, unknown>, where: string): GeoPoint {
  const { lat, lon } = v
  if (typeof lat !== 'number' || typeof lon !== 'number' || Math.abs(lat) > 90 || Math.abs(lon) > 180) {
    throw new Error(`${where}: bad coordinates`)
  }
  return { lat, lon }
}

function continent(v: unknown, where: string): ContinentCode {
  if (!CONTINENT_CODES.includes(v as ContinentCode)) throw new Error(`${where}: bad continent ${JSON.stringify(v)}`)
  return v as ContinentCode
}

function loadCountries(): ReadonlyMap<string, CountryInfo> {
  const m = new Map<string, CountryInfo>()
  for (const [code, v] of Object.entries(readJson('countries.json'))) {
    const where = `countries.json: ${code}`
    m.set(code, Object.freeze({ code, ...point(v, where), continent: continent(v.continent, where), name: String(v.name) }))
  }
  return m
}

function loadPlaces(): ReadonlyMap<string, PlaceInfo> {
  const m = new Map<string, PlaceInfo>()
  for (const [code, v] of Object.entries(readJson('places.json'))) {
    const where = `places.json: ${code}`
    const country = countryLocation(String(v.country))
    if (!country) throw new Error(`${where}: unknown country ${JSON.stringify(v.country)}`)
    m.set(code, Object.freeze({ code, ...point(v, where), country: country.code, continent: country.continent, name: String(v.name) }))
  }
  return m
}

/** The centroid, continent and name of an ISO 3166-1 alpha-2 country (any case); undefined if unknown. */
export function countryLocation(code: string): CountryInfo | undefined {
  countries ??= loadCountries()
  return countries.get(code.length === 2 ? code.toUpperCase() : '')
}

/** A metro area by its IATA-style three-letter code (`LHR`, `iad`; any case); undefined if unknown. */
export function placeLocation(code: string): PlaceInfo | undefined {
  places ??= loadPlaces()
  return places.get(code.length === 3 ? code.toUpperCase() : '')
}

/** Every known country, by code. */
export function allCountries(): ReadonlyMap<string, CountryInfo> {
  countries ??= loadCountries()
  return countries
}

/** Every known place, by code. */
export function allPlaces(): ReadonlyMap<string, PlaceInfo> {
  places ??= loadPlaces()
  return places
}

