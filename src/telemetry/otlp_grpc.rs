//! The OTLP/gRPC transport of [`super::otlp`]: the unary
//! `opentelemetry.proto.collector.trace.v1.TraceService/Export` call over a lazily connected
//! tonic channel (TLS with the webpki roots for `https://` endpoints), whose request body is the
//! already-encoded `ExportTraceServiceRequest`, passed through a codec that copies bytes.

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::MetadataMap;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use super::otlp::Attempt;

const EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// A gRPC client of one collector.
#[derive(Debug, Clone)]
pub struct GrpcClient {
    channel: Channel,
    metadata: MetadataMap,
}

impl GrpcClient {
    /// A client of `endpoint` (`http://host:4317` or `https://…`), sending `metadata` with every
    /// call; the connection is made on first use.
    pub fn new(endpoint: &str, metadata: MetadataMap, timeout: Duration) -> Result<GrpcClient, String> {
        let mut builder = Endpoint::from_shared(endpoint.to_string()).map_err(|e| e.to_string())?;
        if endpoint.starts_with("https://") {
            builder =
                builder.tls_config(ClientTlsConfig::new().with_webpki_roots()).map_err(|e| format!("TLS: {e}"))?;
        }
        Ok(GrpcClient { channel: builder.timeout(timeout).connect_lazy(), metadata })
    }

    /// One `Export` call carrying `body` (an encoded `ExportTraceServiceRequest`).
    pub async fn export(&self, body: Bytes, timeout: Duration) -> Attempt {
        let mut grpc = tonic::client::Grpc::new(self.channel.clone());
        if let Err(e) = grpc.ready().await {
            return Attempt::Retry(format!("cannot reach the collector: {e}"), None);
        }
        let mut request = tonic::Request::new(body);
        *request.metadata_mut() = self.metadata.clone();
        request.set_timeout(timeout);
        let path = ::http::uri::PathAndQuery::from_static(EXPORT);
        match grpc.unary::<Bytes, Bytes, _>(request, path, RawCodec).await {
            Ok(response) => Attempt::Done(response.into_inner()),
            Err(status) => {
                let message = format!("collector answered {:?}: {}", status.code(), status.message());
                // The codes the OTLP specification calls retryable.
                use tonic::Code::*;
                match status.code() {
                    Cancelled | DeadlineExceeded | ResourceExhausted | Aborted | OutOfRange | Unavailable
                    | DataLoss => Attempt::Retry(message, None),
                    _ => Attempt::Failed(message),
                }
            }
        }
    }
}

/// Bytes in, bytes out: the message is encoded before the call.
#[derive(Debug, Clone, Copy)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }

    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = tonic::Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, tonic::Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}
