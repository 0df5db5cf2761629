/// Order statistics of a sample (nearest rank on the sorted values).
struct Statistics: Sendable {
    let sorted: [Double]

    init(_ values: [Double]) { sorted = values.sorted() }

    var count: Int { sorted.count }
    var median: Double { percentile(50) }

    /// The value at `p` percent (0–100); nan for an empty sample.
    func percentile(_ p: Double) -> Double {
        guard !sorted.isEmpty else { return .nan }
        let rank = Int((p / 100 * Double(sorted.count)).rounded(.down))
        return sorted[Swift.min(sorted.count - 1, Swift.max(0, rank))]
    }
}
