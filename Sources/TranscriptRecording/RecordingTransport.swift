import SmartcarOAuth

/// Wraps the real transport and hands every exchange with Smartcar to the recorder (`--record`).
package struct RecordingTransport: HTTPTransport {
    private let base: any HTTPTransport
    private let recorder: SessionRecorder

    package init(_ base: any HTTPTransport, recorder: SessionRecorder) {
        self.base = base
        self.recorder = recorder
    }

    package func send(_ request: HTTPRequest, timeout: Duration) async throws -> HTTPResponse {
        let exchange = recorder.began(request)
        do {
            let response = try await base.send(request, timeout: timeout)
            recorder.exchanged(exchange, .success(response))
            return response
        } catch {
            recorder.exchanged(exchange, .failure(error))
            throw error
        }
    }
}
