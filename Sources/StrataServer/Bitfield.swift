import NIOCore

/// One parsed BITFIELD operation, and the bit-level reads, writes and overflow rules it runs
/// with (ported from Redis' bitops.c so wrap, saturation and failure match it exactly).
struct BitfieldOperation: Sendable {
    enum Kind: Sendable { case get, set, incrby }
    /// OVERFLOW's modes; WRAP until changed.
    enum Overflow: Sendable { case wrap, sat, fail }

    let kind: Kind
    let signed: Bool
    let bits: Int
    let offset: Int
    let argument: Int64
    let overflow: Overflow

    /// The operations of BITFIELD's arguments (from index 2), with Redis' errors in its order.
    static func parse(_ inv: Invocation) throws -> [BitfieldOperation] {
        var operations: [BitfieldOperation] = []
        var overflow = Overflow.wrap
        var i = 2
        while i < inv.arguments.count {
            let remaining = inv.arguments.count - i - 1
            let kind: Kind
            switch inv.upper(i) {
            case "GET" where remaining >= 2: kind = .get
            case "SET" where remaining >= 3: kind = .set
            case "INCRBY" where remaining >= 3: kind = .incrby
            case "OVERFLOW" where remaining >= 1:
                switch inv.upper(i + 1) {
                case "WRAP": overflow = .wrap
                case "SAT": overflow = .sat
                case "FAIL": overflow = .fail
                default: throw CommandError("ERR Invalid OVERFLOW type specified")
                }
                i += 2
                continue
            default: throw CommandError.syntax
            }
            let (signed, bits) = try type(inv.arguments[i + 1])
            let offset = try Commands.bitOffset(inv.arguments[i + 2], unit: bits)
            let argument = kind == .get ? 0 : Int64(try inv.integer(i + 3))
            operations.append(BitfieldOperation(kind: kind, signed: signed, bits: bits, offset: offset, argument: argument, overflow: overflow))
            i += kind == .get ? 3 : 4
        }
        return operations
    }

    /// A type argument: `i1`...`i64` or `u1`...`u63`, lowercase as Redis requires.
    static func type(_ argument: ByteBuffer) throws -> (signed: Bool, bits: Int) {
        let error = CommandError("ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.")
        let view = argument.readableBytesView
        guard let first = view.first, first == UInt8(ascii: "i") || first == UInt8(ascii: "u") else { throw error }
        let signed = first == UInt8(ascii: "i")
        guard let bits = Invocation.parseInteger(view.dropFirst()), bits >= 1, bits <= (signed ? 64 : 63) else { throw error }
        return (signed, bits)
    }

    /// The last bit this operation writes (nil for a GET).
    var lastWrittenBit: Int? { kind == .get ? nil : offset + bits - 1 }

    /// Runs the operation on `value`, which holds every bit a write touches (bits past its end
    /// read as zero); returns the reply: the value read, the old value (SET), the new value
    /// (INCRBY), or nil when OVERFLOW FAIL stopped the write.
    func run(on value: inout [UInt8]) -> Int64? {
        let old = Self.read(value, offset: offset, bits: bits)
        switch kind {
        case .get:
            return signed ? Self.signExtended(old, bits: bits) : Int64(bitPattern: old)
        case .set, .incrby:
            let stored: UInt64
            let reply: Int64
            if signed {
                let current = Self.signExtended(old, bits: bits)
                let (base, delta) = kind == .set ? (argument, Int64(0)) : (current, argument)
                let (overflowed, limited) = Self.signedOverflow(base, delta, bits: bits, mode: overflow)
                if overflowed && overflow == .fail { return nil }
                let new = overflowed ? limited : base &+ delta
                stored = UInt64(bitPattern: new)
                reply = kind == .set ? current : new
            } else {
                let (base, delta) = kind == .set ? (UInt64(bitPattern: argument), Int64(0)) : (old, argument)
                let (overflowed, limited) = Self.unsignedOverflow(base, delta, bits: bits, mode: overflow)
                if overflowed && overflow == .fail { return nil }
                let new = overflowed ? limited : base &+ UInt64(bitPattern: delta)
                stored = new
                reply = Int64(bitPattern: kind == .set ? old : new)
            }
            Self.write(stored, into: &value, offset: offset, bits: bits)
            return reply
        }
    }

    /// The `bits` bits at bit `offset`, most significant first; past the end they are zero.
    static func read(_ value: [UInt8], offset: Int, bits: Int) -> UInt64 {
        var result: UInt64 = 0
        for position in offset..<(offset + bits) {
            let byte = position >> 3
            let bit = byte < value.count ? (value[byte] >> (7 - UInt8(position & 7))) & 1 : 0
            result = result << 1 | UInt64(bit)
        }
        return result
    }

    /// Writes the low `bits` bits of `field` at bit `offset` (inside `value`).
    static func write(_ field: UInt64, into value: inout [UInt8], offset: Int, bits: Int) {
        for j in 0..<bits {
            let position = offset + j
            let mask = UInt8(1) << (7 - UInt8(position & 7))
            if field & (UInt64(1) << (bits - 1 - j)) != 0 { value[position >> 3] |= mask } else { value[position >> 3] &= ~mask }
        }
    }

    /// `raw`, a `bits`-bit two's complement number, as a signed 64-bit one.
    static func signExtended(_ raw: UInt64, bits: Int) -> Int64 {
        guard bits < 64, raw & (UInt64(1) << (bits - 1)) != 0 else { return Int64(bitPattern: raw) }
        return Int64(bitPattern: raw | (UInt64.max << bits))
    }

    /// Whether `value + increment` overflows a signed `bits`-bit field, and the value that
    /// WRAP or SAT stores instead (Redis' checkSignedBitfieldOverflow).
    static func signedOverflow(_ value: Int64, _ increment: Int64, bits: Int, mode: Overflow) -> (Bool, Int64) {
        let maximum: Int64 = bits == 64 ? .max : (1 << (bits - 1)) - 1
        let minimum = -maximum - 1
        let maxIncrement = Int64(bitPattern: UInt64(bitPattern: maximum) &- UInt64(bitPattern: value))
        let minIncrement = minimum &- value
        let over =
            value > maximum || (bits != 64 && increment > maxIncrement)
            || (value >= 0 && increment > 0 && increment > maxIncrement)
        let under =
            value < minimum || (bits != 64 && increment < minIncrement)
            || (value < 0 && increment < 0 && increment < minIncrement)
        guard over || under else { return (false, 0) }
        if mode == .sat { return (true, over ? maximum : minimum) }
        var sum = UInt64(bitPattern: value) &+ UInt64(bitPattern: increment)
        if bits < 64 {
            let mask = UInt64.max << bits
            sum = sum & (UInt64(1) << (bits - 1)) != 0 ? sum | mask : sum & ~mask
        }
        return (true, Int64(bitPattern: sum))
    }

    /// Whether `value + increment` overflows an unsigned `bits`-bit field (at most 63), and the
    /// value that WRAP or SAT stores instead (Redis' checkUnsignedBitfieldOverflow).
    static func unsignedOverflow(_ value: UInt64, _ increment: Int64, bits: Int, mode: Overflow) -> (Bool, UInt64) {
        let maximum: UInt64 = (UInt64(1) << bits) - 1
        let maxIncrement = Int64(bitPattern: maximum &- value)
        let minIncrement = Int64(bitPattern: 0 &- value)
        let over = value > maximum || (increment > 0 && increment > maxIncrement)
        let under = !over && increment < 0 && increment < minIncrement
        guard over || under else { return (false, 0) }
        if mode == .sat { return (true, over ? maximum : 0) }
        return (true, (value &+ UInt64(bitPattern: increment)) & ~(UInt64.max << bits))
    }
}
