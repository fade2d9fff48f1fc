"""Apache Airflow 3 adapter (`uses: airflow`), through the official `apache-airflow-client`."""

from interlock_airflow.adapter import AirflowAdapter

__all__ = ["AirflowAdapter"]
