from django import template

register = template.Library()


@register.filter
def clock(seconds: float) -> str:
    """Seconds as m:ss.s (or h:mm:ss for long videos), the way players show time."""
    seconds = max(float(seconds), 0.0)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours >= 1:
        return f"{int(hours)}:{int(minutes):02d}:{int(secs):02d}"
    return f"{int(minutes)}:{secs:04.1f}"
