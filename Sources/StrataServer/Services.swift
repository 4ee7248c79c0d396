import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOExtras
import NIOPosix
import RESP
import ServiceLifecycle
import StrataStore

/// The client port: accepts connections and runs `ClientHandler` on each.
///
/// On graceful shutdown it stops accepting, tells every connection to finish the command it is
/// running and close (`ChannelShouldQuiesceEvent`), and returns once all have closed.
public final class RESPService: Service {
    let server: Server
    let group: any EventLoopGroup
    let logger: Logger
    /// Dropped once the service is done: its deinit completes a promise on an event loop, which
    /// must still be running then.
    private let quiescer: Locked<ServerQuiescingHelper?>
    private let listener = Locked<(any Channel)?>(nil)

    public init(server: Server, group: any EventLoopGroup, logger: Logger) {
        self.server = server
        self.group = group
        self.logger = logger
        self.quiescer = Locked(ServerQuiescingHelper(group: group))
    }

    /// Binds the client port. Call before running the service group, so that a port in use is
    /// reported before anything else has started.
    public func bind() async throws {
        let server = self.server
        guard let quiesce = quiescer.withLock({ $0 }) else { return }
        let configuration = server.configuration
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(quiesce.makeServerChannelHandler(channel: channel))
                }
            }
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(
                .writeBufferWaterMark,
                value: .init(low: configuration.outputHighWaterMark / 2, high: configuration.outputHighWaterMark))
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ClientHandler(server: server))
                }
            }
        let channel = try await bootstrap.bind(host: configuration.bind, port: configuration.port).get()
        server.boundPort.store(channel.localAddress?.port ?? 0, ordering: .relaxed)
        listener.withLock { $0 = channel }
    }

    /// Releases what `bind` set up when the node gives up before running (a later step failed).
    public func abandon() async {
        if let quiesce = quiescer.withLock({ $0 }) {
            let done = group.next().makePromise(of: Void.self)
            quiesce.initiateShutdown(promise: done)
            try? await done.futureResult.get()
        }
        quiescer.withLock { $0 = nil }
        await server.shutdownPool()
    }

    public func run() async throws {
        if listener.withLock({ $0 }) == nil { try await bind() }
        guard let channel = listener.withLock({ $0 }), let quiesce = quiescer.withLock({ $0 }) else { return }
        let server = self.server
        logger.info("accepting RESP clients", metadata: ["address": "\(server.configuration.bind):\(server.port)"])
        await withGracefulShutdownHandler {
            try? await channel.closeFuture.get()
        } onGracefulShutdown: {
            self.logger.info("shutting down: no new connections; finishing in-flight commands")
            let done = channel.eventLoop.makePromise(of: Void.self)
            quiesce.initiateShutdown(promise: done)
        }
        quiescer.withLock { $0 = nil }
        await server.shutdownPool()
    }
}

/// `/metrics` (Prometheus text format), `/health`, `/ready` and `/sd` (Prometheus service
/// discovery) over HTTP, with Hummingbird.
public struct HTTPService: Service {
    let server: Server
    let group: any EventLoopGroup
    let logger: Logger

    public init(server: Server, group: any EventLoopGroup, logger: Logger) {
        self.server = server
        self.group = group
        self.logger = logger
    }

    public func run() async throws {
        let server = self.server
        let router = Router()
        router.get("metrics") { _, _ -> Response in
            let bytes = server.metrics.render(store: server.store, server: server)
            return Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
        }
        router.get("health") { _, _ -> Response in
            Response(status: .ok, headers: [.contentType: "text/plain"], body: .init(byteBuffer: ByteBuffer(string: "ok\n")))
        }
        router.get("ready") { _, _ -> Response in
            let progress = server.store.warmUp
            let body =
                "{\"ready\":\(progress.done),\"loaded_keys\":\(progress.loadedKeys),"
                + "\"snapshot_keys\":\(progress.totalKeys),\"seconds\":\(progress.seconds)}\n"
            return Response(
                status: progress.done ? .ok : .serviceUnavailable,
                headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: body)))
        }
        router.get("sd") { _, _ -> Response in
            Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: server.discoveryJSON())))
        }
        var httpLogger = logger
        httpLogger.logLevel = max(logger.logLevel, .warning)
        let app = Application(
            router: router,
            configuration: .init(address: .hostname(server.configuration.bind, port: server.configuration.httpPort), serverName: "strata"),
            onServerRunning: { channel in
                server.boundHTTPPort.store(channel.localAddress?.port ?? 0, ordering: .relaxed)
                server.cluster?.httpPort = server.httpPort
                self.logger.info(
                    "serving /metrics, /health, /ready and /sd",
                    metadata: ["address": "http://\(server.configuration.bind):\(server.httpPort)"])
            },
            eventLoopGroupProvider: .shared(group),
            logger: httpLogger)
        // `run()`, not `runService()`: the latter starts a service group of its own that also
        // traps SIGTERM and would stop HTTP before the node's group asks it to.
        try await app.run()
    }
}

/// Owns the store's lifetime: on graceful shutdown (after the client and HTTP ports have
/// stopped) it flushes the writer, snapshots the hot keys and closes LMDB.
public struct StoreService: Service {
    let store: TieredStore
    let logger: Logger

    public init(store: TieredStore, logger: Logger) {
        self.store = store
        self.logger = logger
    }

    public func run() async throws {
        try? await gracefulShutdown()
        store.close()
    }
}
