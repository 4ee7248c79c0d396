#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore

/// Double replies as Redis 7.0's `addReplyDouble` writes them (sorted-set scores, ZINCRBY...).
extension ByteBuffer {
    /// `value` as Redis 7.0 prints a double reply: `%.17g`, infinities as `inf` and `-inf`.
    public static func redisDoubleText(_ value: Double) -> [UInt8] {
        if value.isInfinite { return Array((value > 0 ? "inf" : "-inf").utf8) }
        var buffer = [CChar](repeating: 0, count: 64)
        let length = withVaList([value]) { arguments in
            buffer.withUnsafeMutableBufferPointer { vsnprintf($0.baseAddress!, $0.count, "%.17g", arguments) }
        }
        return buffer[0..<Int(length)].map { UInt8(bitPattern: $0) }
    }

    /// A double reply: a bulk string in RESP2, RESP3's double type (`,`) in RESP3.
    public mutating func writeRESPDouble(_ value: Double, _ version: RESPVersion) {
        let text = ByteBuffer.redisDoubleText(value)
        guard version == .v3 else { return writeRESPBulk(text) }
        writeInteger(UInt8(ascii: ","))
        writeBytes(text)
        writeStaticString("\r\n")
    }
}
