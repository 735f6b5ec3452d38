"""The reference pipeline (``deploy_and_test``); needs the ``pipelines`` extra."""
