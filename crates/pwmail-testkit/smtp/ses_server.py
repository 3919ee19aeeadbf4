"""Amazon SES for pwmail's tests: moto's server mode on 127.0.0.1.

Binds a free port (port 0, kept), verifies the sending domain with SES's
own API (VerifyDomainIdentity, through boto3) unless --no-verify, records
every request it serves (moto's recorder) to --record, and writes its port
to --ready-file once it answers.
"""

import argparse
import os
import signal
import sys
import threading


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--ready-file", required=True)
    parser.add_argument("--record", required=True)
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--verify-domain")
    args = parser.parse_args()

    # moto reads these when it starts recording.
    os.environ["MOTO_RECORDER_FILEPATH"] = args.record
    os.environ["MOTO_ENABLE_RECORDING"] = "true"

    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()

    if args.verify_domain:
        import boto3

        ses = boto3.client(
            "ses",
            endpoint_url=f"http://{host}:{port}",
            region_name=args.region,
            aws_access_key_id="AKIDSETUP",
            aws_secret_access_key="setup",
        )
        ses.verify_domain_identity(Domain=args.verify_domain)

    tmp = args.ready_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(port))
    os.rename(tmp, args.ready_file)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    server.stop()
    sys.exit(0)


if __name__ == "__main__":
    main()
