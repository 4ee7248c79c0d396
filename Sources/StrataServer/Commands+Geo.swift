import NIOCore
import RESP
import StrataCollections
import StrataStore

extension Commands {
    /// GEO commands: positions kept as geohash scores in a sorted set, as Redis does, so GEO keys
    /// are sorted sets to every other command and to Redis' DUMP payloads.
    static let geo: [CommandSpec] = [
        CommandSpec("geoadd", arity: -5, flags: .write, keys: (1, 1, 1)) { inv in
            var (options, changed, i) = (ZAddOptions(), false, 2)
            options: while i < inv.arguments.count {
                switch inv.upper(i) {
                case "NX": options.nx = true
                case "XX": options.xx = true
                case "CH": changed = true
                default: break options
                }
                i += 1
            }
            let remaining = inv.arguments.count - i
            guard remaining > 0, remaining % 3 == 0, !(options.nx && options.xx) else { throw CommandError.syntax }
            let pairs = try stride(from: i, to: inv.arguments.count, by: 3).map { j -> ScoredMember in
                let (longitude, latitude) = try longitudeLatitude(inv, at: j)
                return ScoredMember(member: inv.bytes(j + 2), score: Double(GeoHash.encode(longitude: longitude, latitude: latitude)))
            }
            return try zadd(&inv, pairs, options, changed: changed)
        },

        CommandSpec("geopos", arity: -2, keys: (1, 1, 1)) { inv in
            let members = (2..<inv.arguments.count).map { inv.bytes($0) }
            return try inv.collection(write: false) { slot, out, version in
                let zset = try slot.zset()
                out.writeRESPArrayHeader(members.count)
                for member in members {
                    guard let score = zset?.score(of: member) else {
                        out.writeRESPNullArray(version)
                        continue
                    }
                    let position = GeoHash.decode(score)
                    out.writeRESPArrayHeader(2)
                    writeCoordinate(&out, position.longitude, version)
                    writeCoordinate(&out, position.latitude, version)
                }
            }
        },

        CommandSpec("geodist", arity: -4, keys: (1, 1, 1)) { inv in
            guard inv.arguments.count <= 5 else { throw CommandError.syntax }
            let (first, second) = (inv.bytes(2), inv.bytes(3))
            let conversion = inv.arguments.count == 5 ? try unitConversion(inv.string(4)) : 1
            return try inv.collection(write: false) { slot, out, version in
                guard let zset = try slot.zset(), let a = zset.score(of: first), let b = zset.score(of: second) else {
                    return out.writeRESPNull(version)
                }
                let (p, q) = (GeoHash.decode(a), GeoHash.decode(b))
                writeDistance(&out, GeoHash.distance(p.longitude, p.latitude, q.longitude, q.latitude) / conversion)
            }
        },

        CommandSpec("geohash", arity: -2, keys: (1, 1, 1)) { inv in
            let members = (2..<inv.arguments.count).map { inv.bytes($0) }
            return try inv.collection(write: false) { slot, out, version in
                let zset = try slot.zset()
                out.writeRESPArrayHeader(members.count)
                for member in members {
                    if let score = zset?.score(of: member) { out.writeRESPBulk(GeoHash.standardText(score)) } else { out.writeRESPNull(version) }
                }
            }
        },

        geoSearchCommand("georadius", form: .radius(byMember: false), store: true),
        geoSearchCommand("georadius_ro", form: .radius(byMember: false), store: false),
        geoSearchCommand("georadiusbymember", form: .radius(byMember: true), store: true),
        geoSearchCommand("georadiusbymember_ro", form: .radius(byMember: true), store: false),
        geoSearchCommand("geosearch", form: .search, store: false),
        geoSearchCommand("geosearchstore", form: .search, store: true),
    ]

    /// A position's longitude and latitude at arguments `i` and `i + 1`, with Redis' errors.
    static func longitudeLatitude(_ inv: Invocation, at i: Int) throws -> (Double, Double) {
        let longitude = try parseScore(inv.arguments[i]), latitude = try parseScore(inv.arguments[i + 1])
        guard GeoHash.isValid(longitude: longitude, latitude: latitude) else {
            throw CommandError("ERR invalid longitude,latitude pair \(String(format: "%f,%f", longitude, latitude))")
        }
        return (longitude, latitude)
    }

    /// Metres per unit: m, km, ft, mi (any case).
    static func unitConversion(_ unit: String) throws -> Double {
        switch unit.lowercased() {
        case "m": 1
        case "km": 1000
        case "ft": 0.3048
        case "mi": 1609.34
        default: throw CommandError("ERR unsupported unit provided. please use M, KM, FT, MI")
        }
    }

    /// A distance as Redis replies it: a bulk string with four decimals, in both protocols.
    static func writeDistance(_ out: inout ByteBuffer, _ distance: Double) {
        out.writeRESPBulk(Array(String(format: "%.4f", distance).utf8))
    }

    /// A coordinate in Redis' human long double form: a bulk string in RESP2, a double in RESP3.
    static func writeCoordinate(_ out: inout ByteBuffer, _ value: Double, _ version: RESPVersion) {
        let text = LongDouble.format(LongDouble.Value(value))
        if version == .v3 {
            out.writeInteger(UInt8(ascii: ","))
            out.writeBytes(text)
            out.writeStaticString("\r\n")
        } else {
            out.writeRESPBulk(text)
        }
    }

    enum GeoForm: Sendable {
        /// GEORADIUS (a longitude and latitude) or GEORADIUSBYMEMBER (a member), then radius and unit.
        case radius(byMember: Bool)
        /// GEOSEARCH and GEOSEARCHSTORE: FROMMEMBER/FROMLONLAT and BYRADIUS/BYBOX among the options.
        case search
    }

    enum GeoCentre: Sendable {
        case position(Double, Double)
        case member([UInt8])
    }

    enum GeoShape: Sendable {
        case radius(Double)
        case box(width: Double, height: Double)
    }

    /// A parsed GEORADIUS or GEOSEARCH request.
    struct GeoQuery: Sendable {
        var centre: GeoCentre?
        var shape: GeoShape?
        var conversion = 1.0
        var withDistance = false, withHash = false, withCoordinates = false
        var ascending: Bool?
        var count = 0
        var any = false
        var storeKey: ByteBuffer?
        var storeDistance = false
    }

    /// The GEORADIUS family and GEOSEARCH(STORE), parsed in Redis 7.0's order and with its errors.
    static func geoSearchCommand(_ name: String, form: GeoForm, store: Bool) -> CommandSpec {
        let isSearchStore = name == "geosearchstore"
        let (arity, keys): (Int, (Int, Int, Int))
        switch form {
        case .radius(let byMember): (arity, keys) = (byMember ? -5 : -6, (1, 1, 1))
        case .search: (arity, keys) = isSearchStore ? (-8, (1, 2, 1)) : (-7, (1, 1, 1))
        }
        let flags: CommandFlags = store ? [.write, .oneNode] : []
        // GEORADIUS's STORE and STOREDIST name a second key among the options.
        let storeKeyFinder = store && !isSearchStore ? CommandSpec.keyAndOptionKeys(["STORE", "STOREDIST"]) : nil
        return CommandSpec(name, arity: arity, flags: flags, keys: keys, keyFinder: storeKeyFinder) { inv in
            let parsed = Result { try parseGeoQuery(inv, form: form, store: store, isSearchStore: isSearchStore) }
            let source = isSearchStore ? 2 : 1
            let limits = inv.collectionLimits
            // As Redis: the source's type is checked before the arguments.
            guard let destination = (try? parsed.get())?.storeKey ?? (isSearchStore ? inv.arguments[1] : nil) else {
                return try inv.collection(at: source, write: false) { slot, out, version in
                    let zset = try slot.zset()
                    let query = try parsed.get()
                    guard let zset else { return out.writeRESPArrayHeader(0) }
                    writeGeoResults(&out, try geoMatches(zset, query), query, version)
                }
            }
            return try inv.collections([inv.arguments[source], destination], write: true) { slots, out, _ in
                let zset = try slots[0].zset()
                let query = try parsed.get()
                guard let zset else {
                    slots[1] = CollectionSlot(value: nil, expiresAt: 0)
                    return out.writeRESPInteger(0)
                }
                let found = try geoMatches(zset, query)
                let longest = found.map(\.member.count).max() ?? 0
                var result = SortedSetValue(sizeHint: found.count, longestMember: longest, limits: limits)
                for match in found {
                    _ = try? result.add(match.member, score: query.storeDistance ? match.distance / query.conversion : match.score, limits: limits)
                }
                slots[1] = CollectionSlot(value: result.isEmpty ? nil : .zset(result), expiresAt: 0)
                out.writeRESPInteger(found.count)
            }
        }
    }

    /// A GEORADIUS or GEOSEARCH request's arguments, in Redis 7.0's order and with its errors.
    static func parseGeoQuery(_ inv: Invocation, form: GeoForm, store: Bool, isSearchStore: Bool) throws -> GeoQuery {
            var query = GeoQuery()
            let source = isSearchStore ? 2 : 1
            var base: Int
            switch form {
            case .radius(let byMember):
                if byMember {
                    query.centre = .member(inv.bytes(2))
                    base = 3
                } else {
                    let (lon, lat) = try longitudeLatitude(inv, at: 2)
                    query.centre = .position(lon, lat)
                    base = 4
                }
                let (conversion, radius) = try geoDistance(inv, at: base)
                (query.conversion, query.shape) = (conversion, .radius(radius))
                base += 2
            case .search:
                base = source + 1
            }
            if isSearchStore { query.storeKey = inv.arguments[1] }
            var i = base
            // FROMMEMBER's member is checked against the set once it is read.
            while i < inv.arguments.count {
                let more = inv.arguments.count - i - 1
                switch inv.upper(i) {
                case "WITHDIST": query.withDistance = true
                case "WITHHASH": query.withHash = true
                case "WITHCOORD": query.withCoordinates = true
                case "ANY": query.any = true
                case "ASC": query.ascending = true
                case "DESC": query.ascending = false
                case "COUNT" where more >= 1:
                    let count = try inv.integer(i + 1)
                    guard count > 0 else { throw CommandError("ERR COUNT must be > 0") }
                    query.count = count
                    i += 1
                case "STORE" where more >= 1 && store && !isSearchStore, "STOREDIST" where more >= 1 && store && !isSearchStore:
                    query.storeKey = inv.arguments[i + 1]
                    query.storeDistance = inv.upper(i) == "STOREDIST"
                    i += 1
                case "STOREDIST" where isSearchStore:
                    query.storeDistance = true
                case "FROMMEMBER" where more >= 1 && isSearch(form) && !isPosition(query.centre):
                    query.centre = .member(inv.bytes(i + 1))
                    i += 1
                case "FROMLONLAT" where more >= 2 && isSearch(form) && !isMember(query.centre):
                    let (lon, lat) = try longitudeLatitude(inv, at: i + 1)
                    query.centre = .position(lon, lat)
                    i += 2
                case "BYRADIUS" where more >= 2 && isSearch(form) && !isBox(query.shape):
                    let (conversion, radius) = try geoDistance(inv, at: i + 1)
                    (query.conversion, query.shape) = (conversion, .radius(radius))
                    i += 2
                case "BYBOX" where more >= 3 && isSearch(form) && !isRadius(query.shape):
                    guard let width = Double(inv.string(i + 1)), !width.isNaN else { throw CommandError("ERR need numeric width") }
                    guard let height = Double(inv.string(i + 2)), !height.isNaN else { throw CommandError("ERR need numeric height") }
                    guard width >= 0, height >= 0 else { throw CommandError("ERR height or width cannot be negative") }
                    let conversion = try unitConversion(inv.string(i + 3))
                    (query.conversion, query.shape) = (conversion, .box(width: width * conversion, height: height * conversion))
                    i += 3
                default:
                    throw CommandError.syntax
                }
                i += 1
            }
            if query.storeKey != nil && (query.withDistance || query.withHash || query.withCoordinates) {
                throw CommandError(
                    "ERR \(isSearchStore ? "GEOSEARCHSTORE" : "STORE option in GEORADIUS") is not compatible with WITHDIST, WITHHASH and WITHCOORD options")
            }
            if case .search = form {
                guard query.centre != nil else {
                    throw CommandError("ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for \(inv.string(0))")
                }
                guard query.shape != nil else {
                    throw CommandError("ERR exactly one of BYRADIUS and BYBOX can be specified for \(inv.string(0))")
                }
            }
            if query.any && query.count == 0 { throw CommandError("ERR the ANY argument requires COUNT argument") }
            if query.count != 0 && query.ascending == nil && !query.any { query.ascending = true }
            return query
    }

    private static func isSearch(_ form: GeoForm) -> Bool { if case .search = form { true } else { false } }
    private static func isPosition(_ centre: GeoCentre?) -> Bool { if case .position = centre { true } else { false } }
    private static func isMember(_ centre: GeoCentre?) -> Bool { if case .member = centre { true } else { false } }
    private static func isRadius(_ shape: GeoShape?) -> Bool { if case .radius = shape { true } else { false } }
    private static func isBox(_ shape: GeoShape?) -> Bool { if case .box = shape { true } else { false } }

    /// A radius and its unit at arguments `i`, `i + 1`: metres and the unit's conversion.
    static func geoDistance(_ inv: Invocation, at i: Int) throws -> (conversion: Double, metres: Double) {
        guard let distance = Double(inv.string(i)), !distance.isNaN else { throw CommandError("ERR need numeric radius") }
        guard distance >= 0 else { throw CommandError("ERR radius cannot be negative") }
        let conversion = try unitConversion(inv.string(i + 1))
        return (conversion, distance * conversion)
    }

    struct GeoMatch: Sendable {
        let member: [UInt8]
        let score: Double
        let distance: Double
        let longitude: Double
        let latitude: Double
    }

    /// The members inside the query's shape, sorted as it asks and cut at its COUNT.
    static func geoMatches(_ zset: SortedSetValue, _ query: GeoQuery) throws -> [GeoMatch] {
        let centre: (Double, Double)
        switch query.centre {
        case .position(let lon, let lat): centre = (lon, lat)
        case .member(let member):
            guard let score = zset.score(of: member) else { throw CommandError("ERR could not decode requested zset member") }
            let p = GeoHash.decode(score)
            centre = (p.longitude, p.latitude)
        case nil: return []
        }
        var found: [GeoMatch] = []
        for entry in zset.entries {
            let p = GeoHash.decode(entry.score)
            let distance: Double?
            switch query.shape {
            case .radius(let metres):
                let d = GeoHash.distance(centre.0, centre.1, p.longitude, p.latitude)
                distance = d <= metres ? d : nil
            case .box(let width, let height):
                distance = GeoHash.distanceInBox(width: width, height: height, centre: centre, point: (p.longitude, p.latitude))
            case nil:
                distance = nil
            }
            guard let distance else { continue }
            found.append(GeoMatch(member: entry.member, score: entry.score, distance: distance, longitude: p.longitude, latitude: p.latitude))
            if query.any && found.count == query.count { break }
        }
        if let ascending = query.ascending {
            found.sort { ascending ? $0.distance < $1.distance : $0.distance > $1.distance }
        }
        if query.count > 0 && found.count > query.count { found.removeLast(found.count - query.count) }
        return found
    }

    static func writeGeoResults(_ out: inout ByteBuffer, _ found: [GeoMatch], _ query: GeoQuery, _ version: RESPVersion) {
        let options = (query.withDistance ? 1 : 0) + (query.withHash ? 1 : 0) + (query.withCoordinates ? 1 : 0)
        out.writeRESPArrayHeader(found.count)
        for match in found {
            if options > 0 { out.writeRESPArrayHeader(options + 1) }
            out.writeRESPBulk(match.member)
            if query.withDistance { writeDistance(&out, match.distance / query.conversion) }
            if query.withHash { out.writeRESPInteger(Int(match.score)) }
            if query.withCoordinates {
                out.writeRESPArrayHeader(2)
                writeCoordinate(&out, match.longitude, version)
                writeCoordinate(&out, match.latitude, version)
            }
        }
    }
}
