"""The switch's CPU over the load counts only between two readings of one switch process."""

from payswitch.loadtest.cpu import SwitchCpu, SwitchCpuReading


def reading(node="n1:1", uptime_s=10.0, read_at_s=100.0, cpu_s=2.0) -> SwitchCpuReading:
    return SwitchCpuReading(node, uptime_s, read_at_s, cpu_s)


def test_two_readings_of_one_process_give_the_cpu_between():
    cpu = SwitchCpu(reading(), reading(uptime_s=16.0, read_at_s=106.1, cpu_s=5.5))
    assert cpu.used_s() == 3.5


def test_a_restart_another_node_or_a_missing_reading_give_none():
    restarted = reading(uptime_s=7.0, read_at_s=106.0, cpu_s=1.0)  # up 7 s, 6 s later
    assert SwitchCpu(reading(), restarted).used_s() is None
    assert SwitchCpu(reading(), reading(node="n2:1", uptime_s=16.0, read_at_s=106.0)).used_s() \
        is None
    assert SwitchCpu(reading(), None).used_s() is None
    assert SwitchCpu(None, reading()).used_s() is None
