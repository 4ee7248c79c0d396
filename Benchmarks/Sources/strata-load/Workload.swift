// Key choice, random numbers and request encoding for strata-load. No allocation per request.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore

/// Monotonic nanoseconds (vDSO clock_gettime, about 20 ns).
@inline(__always)
func nowNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

/// Wall-clock seconds since 1970 (to line up with other processes' clocks, e.g. a server start).
func unixNow() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// SplitMix64: tiny state, passes BigCrush, a few cycles per number. One per client connection.
struct FastRandom {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    @inline(__always)
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    @inline(__always)
    mutating func nextDouble() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    /// Uniform in [0, n) (Lemire's multiply-shift; the bias is below 2^-32 for n < 2^32).
    @inline(__always)
    mutating func below(_ n: UInt64) -> UInt64 { next().multipliedFullWidth(by: n).high }
}

/// Zipfian ranks in [0, n) by Gray et al., "Quickly generating billion-record synthetic databases"
/// (SIGMOD 1994), the generator YCSB's ZipfianGenerator uses: O(1) per sample after an O(n) zeta sum.
/// Rank 0 is the most popular item. `KeyChooser` scrambles ranks over the key space.
struct Zipfian: Sendable {
    let items: UInt64
    let theta: Double
    let zetaN: Double
    let alpha: Double
    let eta: Double
    let twoThreshold: Double  // 1 + 0.5^theta

    init(items: UInt64, theta: Double) {
        precondition(items >= 1 && theta > 0 && theta < 1)
        self.items = items
        self.theta = theta
        var sum = 0.0
        if items > 0 {
            for i in 1...items { sum += 1.0 / pow(Double(i), theta) }
        }
        zetaN = sum
        let zeta2 = 1.0 + 1.0 / pow(2.0, theta)
        alpha = 1.0 / (1.0 - theta)
        eta = (1.0 - pow(2.0 / Double(items), 1.0 - theta)) / (1.0 - zeta2 / zetaN)
        twoThreshold = 1.0 + pow(0.5, theta)
    }

    @inline(__always)
    func next(_ rng: inout FastRandom) -> UInt64 {
        let u = rng.nextDouble()
        let uz = u * zetaN
        if uz < 1.0 { return 0 }
        if uz < twoThreshold { return items > 1 ? 1 : 0 }
        let r = UInt64(Double(items) * pow(eta * u - eta + 1.0, alpha))
        return r < items ? r : items - 1
    }
}

enum Distribution: String, Sendable {
    case zipf, uniform
}

/// Picks key indexes in [0, keys). Zipfian ranks are spread over the key space by
/// `rank * M mod keys` with M an odd prime not dividing `keys`: a bijection, so (unlike YCSB's
/// FNV-hash-mod-n scrambling, which merges some ranks) the distribution stays exactly Zipfian, and
/// the hot keys are not neighbours (not all at the start of the key space, not one LMDB page).
struct KeyChooser: Sendable {
    let keys: UInt64
    let zipf: Zipfian?
    let multiplier: UInt64

    init(keys: UInt64, distribution: Distribution, skew: Double) {
        self.keys = keys
        zipf = (distribution == .zipf && keys > 1) ? Zipfian(items: keys, theta: skew) : nil
        var m: UInt64 = 2_654_435_761  // prime (Knuth's multiplicative hash constant)
        for candidate: UInt64 in [2_654_435_761, 2_246_822_519, 3_266_489_917, 668_265_263] where keys % candidate != 0 {
            m = candidate
            break
        }
        multiplier = m
    }

    @inline(__always)
    func next(_ rng: inout FastRandom) -> UInt64 {
        guard let zipf else { return rng.below(keys) }
        let rank = zipf.next(&rng)
        return (rank &* multiplier) % keys  // rank < 2^32 and multiplier < 2^32: no overflow
    }
}

enum WireProtocol: String, Sendable {
    case resp, memcached
}

/// Encodes GET and SET requests for one protocol straight into a ByteBuffer.
/// Keys are `prefix` + the index as 10 zero-padded decimal digits (`key:0000000042`).
struct RequestEncoder: Sendable {
    let proto: WireProtocol
    let keyPrefix: [UInt8]
    let keyLength: Int
    let getHead: [UInt8]  // everything before the key
    let getTail: [UInt8]  // everything after the key
    let setHead: [UInt8]
    let setMid: [UInt8]   // between key and value
    let value: [UInt8]
    let setTail: [UInt8]
    /// The writes' form: a plain SET, or each write wrapped as a script call or a transaction.
    let form: WriteForm
    /// RESP bytes before and after a write's command(s) (MULTI and EXEC for a transaction).
    let writeOpen: [UInt8]
    let writeClose: [UInt8]
    /// Suffixes of the keys a transaction writes (one SET each); [[]]: one write of the key.
    let keySuffixes: [[UInt8]]

    static let keyDigits = 10

    /// What a "SET" request sends.
    enum WriteForm: Sendable, Equatable {
        case set
        /// `EVALSHA sha 1 key value` (a script that SETs its key).
        case evalsha(String)
        /// `MULTI`, `SET {key}:a v`, `SET {key}:b v`, `SET {key}:c v`, `EXEC`.
        case multi3

        /// Replies per request.
        var replies: Int { self == .multi3 ? 5 : 1 }
    }

    init(proto: WireProtocol, keyPrefix: String, valueSize: Int, form: WriteForm = .set) {
        self.form = form
        self.proto = proto
        self.keyPrefix = Array(keyPrefix.utf8)
        keyLength = self.keyPrefix.count + Self.keyDigits
        switch proto {
        case .resp:
            getHead = Array("*2\r\n$3\r\nGET\r\n$\(keyLength)\r\n".utf8)
            getTail = Array("\r\n".utf8)
            switch form {
            case .set:
                setHead = Array("*3\r\n$3\r\nSET\r\n$\(keyLength)\r\n".utf8)
            case .evalsha(let sha):
                setHead = Array("*5\r\n$7\r\nEVALSHA\r\n$\(sha.utf8.count)\r\n\(sha)\r\n$1\r\n1\r\n$\(keyLength)\r\n".utf8)
            case .multi3:
                // Hash-tagged, so the three keys stay together in a cluster.
                setHead = Array("*3\r\n$3\r\nSET\r\n$\(keyLength + 4)\r\n{".utf8)
            }
            setMid = Array("\r\n$\(valueSize)\r\n".utf8)
        case .memcached:
            getHead = Array("get ".utf8)
            getTail = Array("\r\n".utf8)
            setHead = Array("set ".utf8)
            setMid = Array(" 0 0 \(valueSize)\r\n".utf8)
        }
        setTail = Array("\r\n".utf8)
        if form == .multi3 {
            writeOpen = Array("*1\r\n$5\r\nMULTI\r\n".utf8)
            writeClose = Array("*1\r\n$4\r\nEXEC\r\n".utf8)
            keySuffixes = [Array("}:a".utf8), Array("}:b".utf8), Array("}:c".utf8)]
        } else {
            writeOpen = []
            writeClose = []
            keySuffixes = [[]]
        }
        // Random bytes: incompressible, so a server that compresses gets no advantage from the data.
        var rng = FastRandom(seed: 0x5EED)
        value = (0..<valueSize).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
    }

    var getSize: Int { getHead.count + keyLength + getTail.count }
    var setSize: Int {
        writeOpen.count + writeClose.count
            + keySuffixes.reduce(0) { $0 + setHead.count + keyLength + $1.count + setMid.count + value.count + setTail.count }
    }

    @inline(__always)
    private func writeKey(_ index: UInt64, into p: UnsafeMutableRawBufferPointer, at offset: Int) -> Int {
        var o = offset
        for b in keyPrefix {
            p[o] = b
            o += 1
        }
        var v = index
        var d = Self.keyDigits - 1
        while d >= 0 {
            p[o + d] = UInt8(truncatingIfNeeded: v % 10) &+ 48
            v /= 10
            d -= 1
        }
        return o + Self.keyDigits
    }

    @inline(__always)
    private static func copy(_ bytes: [UInt8], into p: UnsafeMutableRawBufferPointer, at offset: Int) -> Int {
        bytes.withUnsafeBytes { src in
            UnsafeMutableRawBufferPointer(rebasing: p[offset..<(offset + src.count)]).copyMemory(from: src)
        }
        return offset + bytes.count
    }

    @inline(__always)
    func writeGet(key: UInt64, into buffer: inout ByteBuffer) {
        let size = getSize
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { p in
            var o = Self.copy(getHead, into: p, at: 0)
            o = writeKey(key, into: p, at: o)
            o = Self.copy(getTail, into: p, at: o)
            return o
        }
    }

    @inline(__always)
    func writeSet(key: UInt64, into buffer: inout ByteBuffer) {
        let size = setSize
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { p in
            var o = Self.copy(writeOpen, into: p, at: 0)
            for suffix in keySuffixes {
                o = Self.copy(setHead, into: p, at: o)
                o = writeKey(key, into: p, at: o)
                o = Self.copy(suffix, into: p, at: o)
                o = Self.copy(setMid, into: p, at: o)
                o = Self.copy(value, into: p, at: o)
                o = Self.copy(setTail, into: p, at: o)
            }
            return Self.copy(writeClose, into: p, at: o)
        }
    }
}
