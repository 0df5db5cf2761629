import CCurl

extension TransportError {
    /// A failed libcurl transfer, classified by whether the request can have reached the server. The detail is
    /// libcurl's code and its fixed text, which never names the URL, a header or a body.
    init(_ code: CURLcode) {
        let detail = "curl \(code.rawValue): \(String(cString: curl_easy_strerror(code)))"
        switch code {
        case CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY:
            self.init(.cannotConnect, detail: detail)
        case CURLE_OPERATION_TIMEDOUT:
            self.init(.timedOut, detail: detail)
        case CURLE_GOT_NOTHING, CURLE_RECV_ERROR, CURLE_SEND_ERROR, CURLE_PARTIAL_FILE, CURLE_WEIRD_SERVER_REPLY,
            CURLE_UNSUPPORTED_PROTOCOL, CURLE_HTTP2, CURLE_HTTP2_STREAM, CURLE_BAD_CONTENT_ENCODING,
            CURLE_BAD_FUNCTION_ARGUMENT:
            // The answer broke off or was not HTTP: an HTTP/0.9 reply is "unsupported protocol", and libcurl 7.88
            // calls a header line without a colon a "bad argument" (the options were all checked when set).
            self.init(.connectionLost, detail: detail)
        case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CERTPROBLEM, CURLE_SSL_CIPHER,
            CURLE_SSL_CACERT_BADFILE, CURLE_SSL_ISSUER_ERROR, CURLE_SSL_PINNEDPUBKEYNOTMATCH,
            CURLE_SSL_INVALIDCERTSTATUS, CURLE_SSL_CRL_BADFILE, CURLE_SSL_ENGINE_NOTFOUND, CURLE_SSL_ENGINE_SETFAILED,
            CURLE_SSL_ENGINE_INITFAILED, CURLE_USE_SSL_FAILED:
            self.init(.secureConnectionFailed, detail: detail)
        default:
            self.init(.other, detail: detail)
        }
    }
}
