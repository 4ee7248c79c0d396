import NIOCore

/// Which RESP version a connection speaks: 2 by default, 3 after `HELLO 3`.
public enum RESPVersion: Int, Sendable {
    case v2 = 2
    case v3 = 3
}

/// Writing replies. Every function appends one complete RESP value (or a header for an
/// aggregate whose elements follow).
extension ByteBuffer {
    /// `+OK`-style simple string. `text` must not contain CR or LF.
    public mutating func writeRESPSimpleString(_ text: String) {
        writeInteger(UInt8(ascii: "+"))
        writeString(text)
        writeStaticString("\r\n")
    }

    /// `-ERR ...` error reply. CR and LF in `message` are replaced by spaces.
    public mutating func writeRESPError(_ message: String) {
        writeInteger(UInt8(ascii: "-"))
        if message.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A }) {
            writeBytes(message.utf8.map { $0 == 0x0D || $0 == 0x0A ? UInt8(ascii: " ") : $0 })
        } else {
            writeString(message)
        }
        writeStaticString("\r\n")
    }

    public mutating func writeRESPInteger(_ value: Int) {
        writeInteger(UInt8(ascii: ":"))
        writeDecimal(value)
        writeStaticString("\r\n")
    }

    /// A bulk string of raw bytes.
    public mutating func writeRESPBulk(_ bytes: UnsafeRawBufferPointer) {
        writeInteger(UInt8(ascii: "$"))
        writeDecimal(bytes.count)
        writeStaticString("\r\n")
        writeBytes(bytes)
        writeStaticString("\r\n")
    }

    public mutating func writeRESPBulk(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { writeRESPBulk($0) }
    }

    public mutating func writeRESPBulk(_ buffer: ByteBuffer) {
        buffer.withUnsafeReadableBytes { writeRESPBulk($0) }
    }

    public mutating func writeRESPBulk(_ text: String) {
        writeInteger(UInt8(ascii: "$"))
        writeDecimal(text.utf8.count)
        writeStaticString("\r\n")
        writeString(text)
        writeStaticString("\r\n")
    }

    /// The null reply: `$-1` in RESP2, `_` in RESP3.
    public mutating func writeRESPNull(_ version: RESPVersion) {
        if version == .v3 { writeStaticString("_\r\n") } else { writeStaticString("$-1\r\n") }
    }

    /// The null array reply: `*-1` in RESP2, `_` in RESP3.
    public mutating func writeRESPNullArray(_ version: RESPVersion) {
        if version == .v3 { writeStaticString("_\r\n") } else { writeStaticString("*-1\r\n") }
    }

    public mutating func writeRESPArrayHeader(_ count: Int) {
        writeInteger(UInt8(ascii: "*"))
        writeDecimal(count)
        writeStaticString("\r\n")
    }

    /// A map of `count` pairs: `%count` in RESP3, a flat array of `2 * count` in RESP2.
    public mutating func writeRESPMapHeader(_ count: Int, _ version: RESPVersion) {
        if version == .v3 {
            writeInteger(UInt8(ascii: "%"))
            writeDecimal(count)
            writeStaticString("\r\n")
        } else {
            writeRESPArrayHeader(count * 2)
        }
    }

    /// ASCII decimal digits of `value`, without allocating.
    public mutating func writeDecimal(_ value: Int) {
        if value >= 0 && value < 10 {
            writeInteger(UInt8(ascii: "0") + UInt8(value))
            return
        }
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes of scratch
        withUnsafeMutableBytes(of: &digits) { scratch in
            var n = value.magnitude
            var position = scratch.count
            repeat {
                position -= 1
                scratch[position] = UInt8(ascii: "0") + UInt8(n % 10)
                n /= 10
            } while n > 0
            if value < 0 {
                position -= 1
                scratch[position] = UInt8(ascii: "-")
            }
            writeBytes(UnsafeRawBufferPointer(rebasing: scratch[position...]))
        }
    }
}
