import CStrataSystem
import Foundation
import Testing

@testable import StrataStore

@Suite struct StoreThreadTests {
    @Test func wakeupTimesOutWhenNotRaised() {
        let wakeup = Wakeup()
        let start = ContinuousClock.now
        #expect(wakeup.wait(timeout: .milliseconds(30)) == false)
        #expect(ContinuousClock.now - start >= .milliseconds(30))
    }

    @Test func aRaisedWakeupIsNotLostAndIsLoweredByTheWait() {
        let wakeup = Wakeup()
        wakeup.signal()
        wakeup.signal()
        let start = ContinuousClock.now
        #expect(wakeup.wait(timeout: .seconds(5)) == true)
        #expect(ContinuousClock.now - start < .seconds(1))
        // Two raises before the wait are one wake-up.
        #expect(wakeup.wait(timeout: .milliseconds(10)) == false)
    }

    @Test func aThreadRunsItsBodyUnderItsNameAndJoinWaitsForIt() throws {
        let seen = Locked<(name: String, finished: Bool)>(("", false))
        let wakeup = Wakeup()
        let thread = StoreThread(name: "strata-test-thread-name") {
            let name = (try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)) ?? "?"
            wakeup.wait()
            seen.withLock { $0 = (name.trimmingCharacters(in: .whitespacesAndNewlines), true) }
        }
        #expect(seen.withLock { $0.finished } == false)
        wakeup.signal()
        thread.join()
        let (name, finished) = seen.withLock { $0 }
        #expect(finished)
        #if os(Linux)
        #expect(name == "strata-test-thr")  // the kernel keeps 15 bytes
        #endif
    }

    @Test func theShimsLibcCallsAnswer() {
        let cpus = Int(strata_affinity_cpu_count())
        #if os(Linux)
        #expect(cpus >= 1 && cpus <= Int(sysconf(Int32(_SC_NPROCESSORS_CONF))))
        #else
        #expect(cpus == -1)
        #endif
        #expect([0, 1].contains(strata_malloc_trim()))
    }
}
