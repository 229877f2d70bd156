//! What the load generator talks to: an HTTP endpoint (the echo server, nginx, bindery's HTTP
//! API), bindery's gRPC API, and Redis directly.

use std::collections::HashMap;
use std::net::SocketAddr;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use dapr::dapr::proto::runtime::v1::InvokeBindingRequest;
use dapr::dapr::proto::runtime::v1::dapr_client::DaprClient;
use http::{HeaderValue, Method, Request, header};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tonic::transport::Channel;

use crate::load::Target;

/// `POST path` with a fixed body over HTTP/1.1 keep-alive connections, one per worker.
pub(crate) struct HttpTarget {
    addr: SocketAddr,
    path: String,
    host: HeaderValue,
    body: Bytes,
}

impl HttpTarget {
    pub(crate) fn new(addr: SocketAddr, path: &str, body: impl Into<Bytes>) -> Result<Self> {
        Ok(HttpTarget {
            addr,
            path: path.to_owned(),
            host: HeaderValue::from_str(&addr.to_string())?,
            body: body.into(),
        })
    }
}

impl Target for HttpTarget {
    type Conn = SendRequest<Full<Bytes>>;

    async fn connect(&self) -> Result<Self::Conn> {
        let stream = TcpStream::connect(self.addr)
            .await
            .with_context(|| format!("connect {}", self.addr))?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }

    async fn call(&self, conn: &mut Self::Conn) -> Result<()> {
        let req = Request::builder()
            .method(Method::POST)
            .uri(self.path.as_str())
            .header(header::HOST, self.host.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(self.body.clone()))?;
        conn.ready().await?;
        let resp = conn.send_request(req).await?;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            bail!(
                "answered {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(300)])
            );
        }
        Ok(())
    }
}

/// `Dapr/InvokeBinding` over one shared HTTP/2 connection (as a Dapr SDK does).
pub(crate) struct GrpcTarget {
    channel: Channel,
    request: InvokeBindingRequest,
}

impl GrpcTarget {
    pub(crate) async fn new(
        port: u16,
        name: &str,
        operation: &str,
        data: &[u8],
        metadata: HashMap<String, String>,
    ) -> Result<Self> {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))?
            .tcp_nodelay(true)
            .connect()
            .await
            .with_context(|| format!("connect to the gRPC API on 127.0.0.1:{port}"))?;
        Ok(GrpcTarget {
            channel,
            request: InvokeBindingRequest {
                name: name.to_owned(),
                data: data.to_vec(),
                metadata,
                operation: operation.to_owned(),
            },
        })
    }
}

impl Target for GrpcTarget {
    type Conn = DaprClient<Channel>;

    async fn connect(&self) -> Result<Self::Conn> {
        Ok(DaprClient::new(self.channel.clone()))
    }

    async fn call(&self, conn: &mut Self::Conn) -> Result<()> {
        conn.invoke_binding(self.request.clone()).await?;
        Ok(())
    }
}

/// `SET key value` straight to Redis over one multiplexed connection shared by every worker
/// (as bindery's Redis binding does).
pub(crate) struct RedisTarget {
    conn: redis::aio::MultiplexedConnection,
    key: String,
    value: Bytes,
}

impl RedisTarget {
    pub(crate) async fn new(url: &str, key: &str, value: impl Into<Bytes>) -> Result<Self> {
        let client = redis::Client::open(url)?;
        let conn = client
            .get_multiplexed_async_connection()
            .await
            .with_context(|| format!("connect to Redis at {url}"))?;
        Ok(RedisTarget {
            conn,
            key: key.to_owned(),
            value: value.into(),
        })
    }
}

impl Target for RedisTarget {
    type Conn = redis::aio::MultiplexedConnection;

    async fn connect(&self) -> Result<Self::Conn> {
        Ok(self.conn.clone())
    }

    async fn call(&self, conn: &mut Self::Conn) -> Result<()> {
        redis::cmd("SET")
            .arg(&self.key)
            .arg(&self.value[..])
            .query_async::<()>(conn)
            .await?;
        Ok(())
    }
}
