import NIOCore

/// A `ByteToMessageDecoder` that turns a connection's bytes into `RESPCommand`s.
///
/// Put it behind `ByteToMessageHandler(_, maximumBufferSize:)` so a client cannot make the
/// connection buffer more than one maximal command.
public struct RESPCommandDecoder: ByteToMessageDecoder {
    public typealias InboundOut = RESPCommand

    private var parser: RESPCommandParser

    public init(limits: RESPDecoderLimits = RESPDecoderLimits()) {
        parser = RESPCommandParser(limits: limits)
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let command = try parser.next(&buffer) else { return .needMoreData }
        context.fireChannelRead(Self.wrapInboundOut(command))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws
        -> DecodingState
    {
        try decode(context: context, buffer: &buffer)
    }
}
