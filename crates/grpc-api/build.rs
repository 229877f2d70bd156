//! Generates the server side of `dapr.proto.runtime.v1.Dapr` for the methods bindery serves.
//! The message types come from the `dapr` crate; tonic answers UNIMPLEMENTED for every other
//! route of the service.

fn main() {
    let method = |name: &str, route: &str, input: &str, output: &str| {
        tonic_build::manual::Method::builder()
            .name(name)
            .route_name(route)
            .input_type(input)
            .output_type(output)
            .codec_path("tonic_prost::ProstCodec")
            .build()
    };
    let v1 = |t: &str| format!("::dapr::dapr::proto::runtime::v1::{t}");
    let service = tonic_build::manual::Service::builder()
        .name("Dapr")
        .package("dapr.proto.runtime.v1")
        .method(method(
            "invoke_binding",
            "InvokeBinding",
            &v1("InvokeBindingRequest"),
            &v1("InvokeBindingResponse"),
        ))
        .method(method(
            "get_metadata",
            "GetMetadata",
            &v1("GetMetadataRequest"),
            &v1("GetMetadataResponse"),
        ))
        .method(method(
            "set_metadata",
            "SetMetadata",
            &v1("SetMetadataRequest"),
            "crate::proto::Empty",
        ))
        .method(method(
            "shutdown",
            "Shutdown",
            &v1("ShutdownRequest"),
            "crate::proto::Empty",
        ))
        .build();
    tonic_build::manual::Builder::new()
        .build_client(false)
        .compile(&[service]);
}
