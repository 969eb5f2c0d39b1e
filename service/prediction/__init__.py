"""The prediction pipeline every protocol shares (pipeline.py), its request model
(request.py) and the whole-curve options of a request (curve_options.py).

Below the protocol adapters (service.api, service.oip) and above the domain
(service.inference, service.registry, service.export): nothing here knows HTTP or gRPC.
"""
