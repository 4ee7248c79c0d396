import StrataStore

/// The one thread that runs atomic units (scripts, and transactions that cannot run on their
/// event loop), in batches: it closes the node's gate once for every unit waiting, up to 64, so
/// under load the cost of closing the gate (waiting for the commands inside to finish) and of
/// waking a thread is shared by many units, as Redis' one thread runs its scripts back to back.
final class AtomicRunner: Sendable {
    /// A unit waiting to run: its kind, and what runs it (given the unit, which the gate shows
    /// as running from when it starts).
    struct Job: Sendable {
        let kind: AtomicUnit.Kind
        let run: @Sendable (AtomicUnit) -> Void
    }

    private static let batch = 64
    private let gate: AtomicGate
    private let queue = Locked<[Job]>([])
    private let wakeup = Wakeup()

    init(gate: AtomicGate) {
        self.gate = gate
        let thread = StoreThread(name: "strata-atomic") { [self] in self.loop() }
        thread.detach()
    }

    func submit(_ job: Job) {
        queue.withLock { $0.append(job) }
        wakeup.signal()
    }

    private func loop() {
        while true {
            wakeup.wait()
            while true {
                let jobs = queue.withLock { q -> ArraySlice<Job> in
                    let taken = q.prefix(Self.batch)
                    q.removeFirst(taken.count)
                    return taken
                }
                guard let first = jobs.first else { break }
                let firstUnit = AtomicUnit(kind: first.kind)
                gate.exclusive(firstUnit) {
                    for (i, job) in jobs.enumerated() {
                        let unit = i == 0 ? firstUnit : AtomicUnit(kind: job.kind)
                        if i > 0 { gate.switchUnit(to: unit) }
                        job.run(unit)
                    }
                }
            }
        }
    }
}
