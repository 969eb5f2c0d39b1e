"""The gRPC protocol definition: the committed generated modules are what the committed
command makes of the .proto, and its messages are, field for field, those of Triton's
published grpc_service.proto (as tritonclient carries it), so the clients interoperate."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from google.protobuf import descriptor_pb2
from tritonclient.grpc import service_pb2

ROOT = Path(__file__).resolve().parents[1]
PROTO = "service/oip/grpc_predict_v2.proto"
GENERATED = ("grpc_predict_v2_pb2.py", "grpc_predict_v2_pb2.pyi", "grpc_predict_v2_pb2_grpc.py")


def test_committed_modules_are_what_the_regeneration_command_makes(tmp_path: Path) -> None:
    (tmp_path / "scripts").mkdir()
    (tmp_path / "service" / "oip").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "gen-proto.sh", tmp_path / "scripts")
    shutil.copy(ROOT / PROTO, tmp_path / PROTO)
    subprocess.run([str(tmp_path / "scripts" / "gen-proto.sh")], check=True,
                   env={**os.environ, "PYTHON": sys.executable})
    for name in GENERATED:
        made = (tmp_path / "service" / "oip" / name).read_bytes()
        assert made == (ROOT / "service" / "oip" / name).read_bytes(), (
            f"{name} is stale: run `make proto` (scripts/gen-proto.sh) and commit it")


def _messages(file: descriptor_pb2.FileDescriptorProto) -> dict[str, dict]:
    """Every message (nested ones too) by full name: its fields' number, type, label and
    message type."""
    found: dict[str, dict] = {}

    def walk(messages, prefix: str) -> None:
        for message in messages:
            name = f"{prefix}.{message.name}"
            found[name] = {f.name: (f.number, f.type, f.label, f.type_name)
                           for f in message.field}
            walk(message.nested_type, name)

    walk(file.message_type, file.package)
    return found


def test_messages_and_calls_match_tritons_published_protocol(tmp_path: Path) -> None:
    descriptor_set = tmp_path / "ours.pb"
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-I", str(ROOT),
                    f"--descriptor_set_out={descriptor_set}", str(ROOT / PROTO)], check=True)
    ours = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set.read_bytes()).file[0]
    theirs = descriptor_pb2.FileDescriptorProto()
    service_pb2.DESCRIPTOR.CopyToProto(theirs)
    assert ours.package == theirs.package == "inference"
    our_messages, their_messages = _messages(ours), _messages(theirs)
    assert len(our_messages) >= 20
    for name, fields in our_messages.items():
        assert fields == their_messages[name], name
    (our_service,) = ours.service
    their_service = next(s for s in theirs.service if s.name == our_service.name)
    their_methods = {m.name: (m.input_type, m.output_type) for m in their_service.method}
    assert {m.name for m in our_service.method} == {
        "ServerLive", "ServerReady", "ModelReady", "ServerMetadata", "ModelMetadata",
        "ModelInfer"}
    for method in our_service.method:
        assert (method.input_type, method.output_type) == their_methods[method.name]


def test_the_app_imports_its_grpc_module_only_when_grpc_is_on() -> None:
    """So a process may run the app (gRPC off) beside tritonclient.grpc, whose protocol
    classes would clash with the service's in protobuf's default pool."""
    code = ("import sys, tritonclient.grpc, service.main; "
            "assert 'service.oip.grpc_server' not in sys.modules; "
            "assert 'service.oip.grpc_predict_v2_pb2' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
