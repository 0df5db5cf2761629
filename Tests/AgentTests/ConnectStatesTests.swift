import AgentSupport
import Testing

@testable import AuthAgent

@Suite struct ConnectStatesTests {
    @Test func aStateIsValidOnceThenReused() {
        let states = ConnectStates(clock: SystemClock(), lifetime: 60)
        states.remember("s1", redirectURI: "https://example.com/cb", key: "car")
        guard case .valid(let issued) = states.claim("s1") else { Issue.record("a fresh state was refused"); return }
        #expect(issued.redirectURI == "https://example.com/cb")
        #expect(issued.key == "car")
        #expect(states.claim("s1") == .reused)
        #expect(states.claim("never") == .unknown)
    }

    @Test func aStateExpires() {
        let clock = AdjustableClock()
        let states = ConnectStates(clock: clock, lifetime: 60)
        states.remember("s1", redirectURI: nil, key: nil)
        clock.advance(by: 61)
        #expect(states.claim("s1") == .expired)
    }

    @Test func generatedStatesAreUnguessable() {
        let generated = Set((0..<1000).map { _ in ConnectStates.generate() })
        #expect(generated.count == 1000)
        #expect(generated.allSatisfy { $0.count == 32 && $0.allSatisfy(\.isHexDigit) })
    }

    @Test func theRegistryIsBounded() {
        let states = ConnectStates(clock: SystemClock(), lifetime: 60, capacity: 10)
        for n in 0..<100 { states.remember("s\(n)", redirectURI: nil, key: nil) }
        #expect(states.claim("s0") == .unknown)
        if case .valid = states.claim("s99") {} else { Issue.record("the newest state was dropped") }
    }
}
