import Logging
import NIOCore
import NIOPosix
import RESP
import StrataStore

/// Matches replies to requests on one pipelined peer connection, in order.
final class PeerReplyHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = (ByteBuffer, EventLoopPromise<RESPReply>)
    typealias OutboundOut = ByteBuffer

    // Touched only on the channel's event loop: no runtime exclusivity checks.
    @exclusivity(unchecked) private var buffer = ByteBuffer()
    @exclusivity(unchecked) private var waiting = CircularBuffer<EventLoopPromise<RESPReply>>()
    private let parser = RESPReplyParser()
    private var flushScheduled = false

    /// Requests written in one turn of the event loop go out together, in one flush (one write
    /// system call for many replication or forwarded commands).
    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let (bytes, reply) = unwrapOutboundIn(data)
        waiting.append(reply)
        context.write(wrapOutboundOut(bytes), promise: promise)
        guard !flushScheduled else { return }
        flushScheduled = true
        context.eventLoop.assumeIsolated().execute {
            self.flushScheduled = false
            context.flush()
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        buffer.writeBuffer(&incoming)
        do {
            while let reply = try parser.next(&buffer) {
                guard let promise = waiting.popFirst() else {
                    context.close(promise: nil)
                    return
                }
                promise.succeed(reply)
            }
            buffer.discardReadBytes()
        } catch {
            context.fireErrorCaught(error)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failAll(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(PeerError.connectionClosed)
        context.fireChannelInactive()
    }

    private func failAll(_ error: any Error) {
        while let promise = waiting.popFirst() { promise.fail(error) }
    }
}

/// Why a request to a peer failed.
public enum PeerError: Error, Sendable, Equatable {
    case connectionClosed
    case timedOut
    case refused(String)
}

/// A client for one peer node: one pipelined connection, opened on first use and again after a
/// failure, authenticated as a peer. Every request has a deadline; a request that misses it
/// fails and the connection is closed (later replies could no longer be matched).
public final class PeerClient: Sendable {
    public let node: NodeID
    public let host: String
    public let port: Int
    private let group: any EventLoopGroup
    private let handshake: [[String]]
    private let timeout: TimeAmount
    private let channel = Locked<EventLoopFuture<any Channel>?>(nil)

    /// `handshake`: commands sent first on every new connection (AUTH, HELLO 3, STRATA.PEER).
    public init(node: NodeID, host: String, port: Int, group: any EventLoopGroup, handshake: [[String]], timeout: TimeAmount = .seconds(1)) {
        self.node = node
        self.host = host
        self.port = port
        self.group = group
        self.handshake = handshake
        self.timeout = timeout
    }

    /// Encodes a command as a RESP array of bulk strings.
    public static func encode(_ arguments: [ByteBuffer]) -> ByteBuffer {
        var out = ByteBuffer()
        out.writeRESPArrayHeader(arguments.count)
        for argument in arguments { out.writeRESPBulk(argument) }
        return out
    }

    /// Sends `arguments` and returns the reply (an error reply is a success here: the caller
    /// decides); fails on connection problems or after the timeout.
    public func send(_ arguments: [ByteBuffer], timeout: TimeAmount? = nil) -> EventLoopFuture<RESPReply> {
        let bytes = PeerClient.encode(arguments)
        let timeout = timeout ?? self.timeout
        return connection().flatMap { channel in
            let promise = channel.eventLoop.makePromise(of: RESPReply.self)
            let timer = channel.eventLoop.scheduleTask(in: timeout) {
                promise.fail(PeerError.timedOut)
                channel.close(promise: nil)
            }
            promise.futureResult.whenComplete { _ in timer.cancel() }
            channel.write((bytes, promise)).whenFailure { promise.fail($0) }
            return promise.futureResult
        }
    }

    /// Closes the connection; the next request opens a new one.
    public func close() {
        let current = channel.withLock { value -> EventLoopFuture<any Channel>? in
            defer { value = nil }
            return value
        }
        current?.whenSuccess { $0.close(promise: nil) }
    }

    private func connection() -> EventLoopFuture<any Channel> {
        channel.withLock { current in
            if let current { return current }
            let future = connect()
            current = future
            future.whenFailure { [weak self] _ in self?.forget(future) }
            future.whenSuccess { [weak self] channel in
                // Its own weak capture: the outer one is a var, which a Sendable closure may not share.
                channel.closeFuture.whenComplete { [weak self] _ in self?.forget(future) }
            }
            return future
        }
    }

    private func forget(_ future: EventLoopFuture<any Channel>) {
        channel.withLock { current in
            if current === future { current = nil }
        }
    }

    private func connect() -> EventLoopFuture<any Channel> {
        let handshake = self.handshake
        let timeout = self.timeout
        return ClientBootstrap(group: group)
            .connectTimeout(timeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(PeerReplyHandler())
                }
            }
            .connect(host: host, port: port)
            .flatMap { channel in
                // Pipeline the handshake; the connection is usable once every step said OK.
                let replies = handshake.map { command -> EventLoopFuture<RESPReply> in
                    let promise = channel.eventLoop.makePromise(of: RESPReply.self)
                    channel.writeAndFlush((PeerClient.encode(command.map { ByteBuffer(string: $0) }), promise))
                        .whenFailure { promise.fail($0) }
                    return promise.futureResult
                }
                let deadline = channel.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
                return EventLoopFuture.whenAllSucceed(replies, on: channel.eventLoop).flatMapThrowing { replies in
                    deadline.cancel()
                    if let refused = replies.first(where: { $0.kind == .error }) {
                        channel.close(promise: nil)
                        throw PeerError.refused(refused.string ?? "handshake refused")
                    }
                    return channel
                }
            }
    }
}
