import Foundation
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
            deflater = CompressionAlgorithm.zlib(configuration: ValueCompressor.deflateConfiguration).compressor
            try deflater.startStream()
            inflater = CompressionAlgorithm.zlib().decompressor
            try inflater.startStream()
        }
    }

    /// zlib level 1 with a small hash table. Profiling SET of 4 KiB values showed deflate at
    /// the default level 6 taking over half the node's CPU: its long match chains are slowest on
    /// exactly the repetitive data (JSON, HTML) that compresses well, and every `deflateReset`
    /// clears a 64 KiB hash table. Level 1 compresses such values 3-5x faster for a few percent
    /// of ratio; a 2 K-entry table costs a 4 KiB clear. Any zlib stream still inflates, so
    /// records written with other settings read back unchanged.
    static let deflateConfiguration = ZlibConfiguration(
        windowSize: .defaultWindowSize, compressionLevel: .fastestCompression, memoryLevel: .memory8K)

    private let pool = Locked<[Streams]>([])
    private let maximumPooled = 16

    private func withStreams<R>(_ body: (Streams) throws -> R) throws -> R {
        let streams = try pool.withLock { $0.popLast() } ?? Streams()
        defer {
            pool.withLock { if $0.count < maximumPooled { $0.append(streams) } }
        }
        return try body(streams)
    }

    /// Whether `value` looks compressible enough to be worth deflating.
    ///
    /// Deflate runs at roughly 100 MB/s on data it cannot shrink (random bytes, already-compressed
    /// images, random text), which would make a 4 KiB SET cost ~40 µs of CPU to save little. The
    /// order-0 entropy of a sample (up to 4 KiB, in four stripes for larger values) bounds what
    /// Huffman coding alone can save; at 5.6 bits per byte or more (30% saved at best) we store the value
    /// as it is. Structured data (JSON ~5 bits, text ~4.5, hex ~4) still compresses, and LZ
    /// matches only make it smaller.
    public static func worthCompressing(_ value: UnsafeRawBufferPointer) -> Bool {
        guard value.count >= 64 else { return false }
        var counts = [Int](repeating: 0, count: 256)
        var sampled = 0
        let stripes = value.count > 4096 ? 4 : 1
        let stripeLength = min(value.count, 4096) / stripes
        for stripe in 0..<stripes {
            let start = stripes == 1 ? 0 : stripe * (value.count - stripeLength) / (stripes - 1)
            for i in start..<(start + stripeLength) { counts[Int(value[i])] += 1 }
            sampled += stripeLength
        }
        var entropy = 0.0
        let total = Double(sampled)
        for count in counts where count > 0 {
            let p = Double(count) / total
            entropy -= p * log2(p)
        }
        return entropy < 5.6
    }

    /// The zlib stream for `value`, or nil when compressing would not make it smaller.
    public func compress(_ value: UnsafeRawBufferPointer) -> ByteBuffer? {
        guard ValueCompressor.worthCompressing(value) else { return nil }
        return try? withStreams { streams in
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
