import CompressNIO
import NIOCore
import Synchronization

/// zlib compression of values through compress-nio, with reusable streams.
///
/// Setting up a zlib stream allocates a few hundred KiB of state, which costs more than compressing
/// a 4 KiB value; so streams are started once and kept in a small pool, and each use only resets
/// its stream (`deflateReset` / `inflateReset`).
public final class ValueCompressor: Sendable {
    public init() {}

    /// A started compressor or decompressor. Used by one thread at a time: it is taken out of the
    /// pool under `pool`'s lock and put back after use, so no two threads ever share it.
    private final class Streams: @unchecked Sendable {
        let deflater: any NIOCompressor
        let inflater: any NIODecompressor
        init() throws {
            deflater = CompressionAlgorithm.zlib().compressor
            try deflater.startStream()
            inflater = CompressionAlgorithm.zlib().decompressor
            try inflater.startStream()
        }
    }

    private let pool = Locked<[Streams]>([])
    private let maximumPooled = 16

    private func withStreams<R>(_ body: (Streams) throws -> R) throws -> R {
        let streams = try pool.withLock { $0.popLast() } ?? Streams()
        defer {
            pool.withLock { if $0.count < maximumPooled { $0.append(streams) } }
        }
        return try body(streams)
    }

    /// The zlib stream for `value`, or nil when compressing would not make it smaller.
    public func compress(_ value: UnsafeRawBufferPointer) -> ByteBuffer? {
        try? withStreams { streams in
            var input = ByteBuffer(bytes: value)
            var output = ByteBuffer()
            output.reserveCapacity(streams.deflater.maxSize(from: input))
            defer { try? streams.deflater.resetStream() }
            try streams.deflater.streamDeflate(from: &input, to: &output, flush: .finish)
            return output.readableBytes < value.count ? output : nil
        }
    }

    /// Inflates `compressed` into exactly `rawLength` bytes; throws if the stream is damaged or of
    /// another length.
    public func decompress(_ compressed: UnsafeRawBufferPointer, rawLength: Int) throws -> [UInt8] {
        try withStreams { streams in
            var input = ByteBuffer(bytes: compressed)
            var output = ByteBuffer()
            output.reserveCapacity(rawLength)
            defer { try? streams.inflater.resetStream() }
            try streams.inflater.streamInflate(from: &input, to: &output)
            guard output.readableBytes == rawLength else {
                throw StoreError(.storage, "decompressed length \(output.readableBytes) != \(rawLength)")
            }
            return output.readBytes(length: rawLength) ?? []
        }
    }
}
