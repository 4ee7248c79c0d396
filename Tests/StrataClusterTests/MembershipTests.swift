import Testing

@testable import StrataCluster

@Suite struct MembershipTests {
    let base = Membership(
        epoch: 3,
        members: [
            .init(id: NodeID("n2"), host: "127.0.0.1", port: 7380),
            .init(id: NodeID("n1"), host: "127.0.0.1", port: 7379),
        ])

    @Test func encodingRoundTrips() throws {
        let joining = base.with(.init(id: NodeID("n3"), host: "10.0.0.3", port: 7381, state: .joining))
        let decoded = try #require(Membership(encoded: joining.encoded))
        #expect(decoded == joining)
        #expect(decoded.epoch == 4)
        #expect(decoded.members.map(\.id.name) == ["n1", "n2", "n3"])
        #expect(decoded.member(NodeID("n3"))?.state == .joining)
    }

    @Test func httpPortsRoundTripAndOlderTextStillParses() throws {
        let old = "strata-membership 1\nepoch 2\nmember\tn1\t127.0.0.1\t7379\tnormal\n"
        let parsed = try #require(Membership(encoded: old))
        #expect(parsed.member(NodeID("n1"))?.httpPort == nil)
        #expect(parsed.encoded == old)
        let recorded = parsed.recordingHTTPPorts([NodeID("n1"): 9379, NodeID("n9"): 1])
        #expect(recorded.epoch == 2)
        #expect(recorded.members.map(\.id.name) == ["n1"])
        #expect(recorded.encoded == "strata-membership 1\nepoch 2\nmember\tn1\t127.0.0.1\t7379\tnormal\t9379\n")
        let decoded = try #require(Membership(encoded: recorded.encoded))
        #expect(decoded == recorded)
        #expect(decoded.member(NodeID("n1"))?.httpPort == 9379)
    }

    @Test func malformedTextIsRefused() {
        for text in [
            "", "strata-membership 2\nepoch 1\n", "strata-membership 1\nepoch x\n",
            "strata-membership 1\nepoch 1\nmember\tn1\th\t0\tnormal\n",
            "strata-membership 1\nepoch 1\nmember\tn1\th\t7379\tgone\n",
            "strata-membership 1\nepoch 1\nmember\tn 1\th\t7379\tnormal\n",
            "strata-membership 1\nepoch 1\nmember\tn1\th\t7379\tnormal\t0\n",
            "strata-membership 1\nepoch 1\nmember\tn1\th\t7379\tnormal\t9379\tx\n",
        ] {
            #expect(Membership(encoded: text) == nil, "\(text)")
        }
    }

    @Test func servingAndFutureNodesDifferWhileMoving() {
        let moving = base.with(.init(id: NodeID("n3"), host: "h", port: 1, state: .joining))
            .with(.init(id: NodeID("n1"), host: "127.0.0.1", port: 7379, state: .leaving))
        #expect(moving.servingNodes.map(\.name) == ["n1", "n2"])
        #expect(moving.futureNodes.map(\.name) == ["n2", "n3"])
        #expect(!moving.isSettled)
        #expect(base.isSettled)
        #expect(base.without(NodeID("n1")).members.map(\.id.name) == ["n2"])
    }

    @Test func aHigherEpochWinsAndTiesBreakTheSameWayEverywhere() {
        let a = base.with(.init(id: NodeID("a"), host: "h", port: 1, state: .joining))
        let b = base.with(.init(id: NodeID("b"), host: "h", port: 1, state: .joining))
        #expect(a.supersedes(base))
        #expect(!base.supersedes(a))
        #expect(a.supersedes(b) != b.supersedes(a))
        #expect(!a.supersedes(a))
    }
}
