import NIOCore
import RESP

extension ClusterNode {
    /// Sends `arguments` to every live peer, in the order calls are made (one connection per
    /// peer keeps them in order); completes with each peer's answer, nil where a peer failed or
    /// did not answer within `timeout`.
    public func broadcast(_ arguments: [ByteBuffer], timeout: TimeAmount, eventLoop: any EventLoop) -> EventLoopFuture<[RESPReply?]> {
        let peers = cluster.peerIDs.filter { cluster.isLive($0) }
        let sends = peers.map { peer in
            cluster.send(arguments, to: peer, timeout: timeout).map { Optional($0) }.recover { _ in nil }
        }
        return EventLoopFuture.whenAllSucceed(sends, on: eventLoop)
    }
}
