import NIOCore
import Testing

@testable import StrataCluster

/// Failure detection on a manual clock: every instant is given, none is read.
@Suite struct FailureDetectorTests {
    let n2 = NodeID("n2")
    let n3 = NodeID("n3")
    let start = NIODeadline.uptimeNanoseconds(1_000_000_000)

    private func detector() -> FailureDetector {
        var detector = FailureDetector(timeout: .seconds(2))
        detector.track([n2, n3], now: start)
        return detector
    }

    @Test func newPeersStartUp() {
        let d = detector()
        #expect(d.isUp(n2) && d.isUp(n3))
        #expect(!d.isUp(NodeID("stranger")))
    }

    @Test func aFailureWithinTheTimeoutKeepsAPeerUp() {
        var d = detector()
        #expect(d.failed(n2, now: start + .milliseconds(1999)) == false)
        #expect(d.isUp(n2))
    }

    @Test func aPeerSilentForTheTimeoutIsDownAtItsNextFailure() {
        var d = detector()
        #expect(d.failed(n2, now: start + .seconds(2)) == true)
        #expect(!d.isUp(n2))
        #expect(d.isUp(n3))
        // Already down: a second failure changes nothing.
        #expect(d.failed(n2, now: start + .seconds(3)) == false)
    }

    @Test func anAnswerResetsTheSilence() {
        var d = detector()
        #expect(d.answered(n2, now: start + .seconds(1)) == false)  // was up: no change
        #expect(d.failed(n2, now: start + .milliseconds(2500)) == false)
        #expect(d.failed(n2, now: start + .seconds(3)) == true)
    }

    @Test func aRefusedConnectionIsDownAtOnce() {
        var d = detector()
        #expect(d.failed(n3, now: start + .milliseconds(1), immediately: true) == true)
        #expect(!d.isUp(n3))
    }

    @Test func aDownPeerThatAnswersIsUpAndReportedOnce() {
        var d = detector()
        _ = d.failed(n2, now: start, immediately: true)
        #expect(d.answered(n2, now: start + .seconds(5)) == true)
        #expect(d.isUp(n2))
        #expect(d.answered(n2, now: start + .seconds(6)) == false)
    }

    @Test func peersThatLeaveAreForgottenAndNewOnesStartUp() {
        var d = detector()
        _ = d.failed(n2, now: start, immediately: true)
        let n4 = NodeID("n4")
        d.track([n2, n4], now: start + .seconds(1))
        #expect(d.peers[n3] == nil)
        #expect(d.isUp(n4))
        #expect(!d.isUp(n2))  // tracking again does not forget what is known
        #expect(d.answered(NodeID("gone"), now: start) == false)
        #expect(d.failed(n3, now: start + .seconds(10)) == false)
    }

    @Test func aHeartbeatReplySaysWhichWayTheMembershipGoes() {
        #expect(HeartbeatAction(mine: 5, theirs: 6) == .fetchMembership)
        #expect(HeartbeatAction(mine: 5, theirs: 4) == .pushMembership)
        #expect(HeartbeatAction(mine: 5, theirs: 5) == .none)
        #expect(HeartbeatAction(mine: UInt64.max, theirs: Int.max) == .none)
    }
}
