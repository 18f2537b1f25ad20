//! Compiles `taquilla/v1/*.proto` (and the payment simulator's `taquilla/sim/v1`) with protox (a pure-Rust protobuf compiler), so the build
//! needs no system `protoc`, and writes the descriptor set that server reflection serves.

use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "taquilla/v1/common.proto",
    "taquilla/v1/waiting_room.proto",
    "taquilla/v1/sales.proto",
    "taquilla/v1/operator.proto",
];

/// The simulated payment provider's own service: compiled apart so that reflection on the
/// Taquilla server lists only the public API.
const SIMULATOR_PROTOS: &[&str] = &["taquilla/sim/v1/payment_simulator.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for proto in PROTOS.iter().chain(SIMULATOR_PROTOS) {
        println!("cargo:rerun-if-changed={proto}");
    }
    let fds = protox::compile(PROTOS, ["."])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let descriptor_path = out_dir.join("taquilla_descriptor.bin");
    std::fs::write(&descriptor_path, prost::Message::encode_to_vec(&fds))?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .codec_path("crate::LeanCodec")
        .compile_fds(fds)?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .codec_path("crate::LeanCodec")
        .compile_fds(protox::compile(SIMULATOR_PROTOS, ["."])?)?;
    Ok(())
}
